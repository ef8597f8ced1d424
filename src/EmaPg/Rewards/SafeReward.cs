using EmaPg.Data;

namespace EmaPg.Rewards;

/// <summary>Counts of one reward's calls and of the failures that scored 0 instead.</summary>
public sealed record RewardReport(string Reward, long Calls, long Exceptions, long Timeouts, long NonNumbers)
{
    public long Failures => Exceptions + Timeouts + NonNumbers;
    public override string ToString() =>
        $"reward '{Reward}': {Calls} calls, {Failures} scored 0 by failure ({Exceptions} exceptions, {Timeouts} timeouts, {NonNumbers} non-numbers)";
}

/// <summary>
/// The run-safety policy around any reward: an exception, a call outlasting <c>timeout</c> or a result that is
/// not a finite number scores 0, is counted, and the last failure message is kept; it never propagates.
/// In-process rewards that hang are abandoned on a worker thread (they cannot be killed); an
/// <see cref="ExternalProcessReward"/> enforces the timeout itself by killing and restarting its process.
/// </summary>
public sealed class SafeReward(string name, IReward inner, TimeSpan timeout) : IReward, IDisposable
{
    private long _calls, _exceptions, _timeouts, _nonNumbers;

    public string Name { get; } = name;
    public string? LastFailure { get; private set; }

    public double Score(string response, PromptExample example)
    {
        Interlocked.Increment(ref _calls);
        double score;
        try
        {
            if (inner is ExternalProcessReward) score = inner.Score(response, example);
            else
            {
                // A dedicated thread, not the pool: a hung reward keeps its thread forever and must not starve the pool.
                var task = Task.Factory.StartNew(() => inner.Score(response, example), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                if (!task.Wait(timeout)) return Fail(ref _timeouts, $"timed out after {timeout.TotalSeconds:0.###} s");
                score = task.Result;
            }
        }
        catch (Exception e)
        {
            var inner0 = e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerExceptions[0] : e;
            return inner0 is RewardFailure f
                ? f.Kind switch
                {
                    RewardFailureKind.Timeout => Fail(ref _timeouts, f.Message),
                    RewardFailureKind.NonNumber => Fail(ref _nonNumbers, f.Message),
                    _ => Fail(ref _exceptions, f.Message),
                }
                : Fail(ref _exceptions, $"{inner0.GetType().Name}: {inner0.Message}");
        }
        return double.IsFinite(score) ? score : Fail(ref _nonNumbers, $"returned {score}");
    }

    private double Fail(ref long counter, string message)
    {
        Interlocked.Increment(ref counter);
        LastFailure = message;
        return 0.0;
    }

    /// <summary>Ends an external reward's process; other rewards hold nothing.</summary>
    public void Dispose() => (inner as IDisposable)?.Dispose();

    public RewardReport Report() => new(Name, Interlocked.Read(ref _calls), Interlocked.Read(ref _exceptions), Interlocked.Read(ref _timeouts), Interlocked.Read(ref _nonNumbers));
}
