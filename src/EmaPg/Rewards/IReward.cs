using EmaPg.Data;

namespace EmaPg.Rewards;

/// <summary>
/// A reward function: scores a decoded response against its example. Implementations may throw or hang;
/// callers that must not stop wrap them in <see cref="SafeReward"/>, which turns those into 0 and counts them.
/// </summary>
public interface IReward
{
    double Score(string response, PromptExample example);
}

/// <summary>A reward call that failed in a known way (timeout, crash, unreadable output); counted by <see cref="SafeReward"/>.</summary>
public sealed class RewardFailure(RewardFailureKind kind, string message) : Exception(message)
{
    public RewardFailureKind Kind { get; } = kind;
}

public enum RewardFailureKind { Exception, Timeout, NonNumber }
