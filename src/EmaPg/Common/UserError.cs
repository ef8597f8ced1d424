namespace EmaPg.Common;

/// <summary>
/// An error caused by the user's input (an option, a config key, a data file). The CLI prints its
/// message without a stack trace and exits with code 2; anything else is a bug and keeps its trace.
/// </summary>
public class UserError(string message) : Exception(message);

/// <summary>Validation helpers whose messages always name the option and its allowed range.</summary>
public static class Check
{
    public static double Range(string name, double value, double min, double max, bool minInclusive = true, bool maxInclusive = true)
    {
        bool lowOk = minInclusive ? value >= min : value > min;
        bool highOk = maxInclusive ? value <= max : value < max;
        if (double.IsNaN(value) || !lowOk || !highOk)
            throw new UserError($"{name} must be in {(minInclusive ? "[" : "(")}{Fmt(min)}, {Fmt(max)}{(maxInclusive ? "]" : ")")}, got {Fmt(value)}.");
        return value;
    }

    public static int Range(string name, int value, int min, int max)
    {
        if (value < min || value > max)
            throw new UserError($"{name} must be an integer in [{min}, {(max == int.MaxValue ? "∞" : max.ToString())}], got {value}.");
        return value;
    }

    public static T OneOf<T>(string name, T value, IEnumerable<T> allowed)
    {
        var list = allowed.ToList();
        if (!list.Contains(value))
            throw new UserError($"{name} must be one of {string.Join(", ", list)}, got '{value}'.");
        return value;
    }

    /// <summary>A directory path the user gave for output: non-empty, a valid path, not an existing file.</summary>
    public static string DirectoryPath(string? path, string option)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new UserError($"{option} must name a directory, got an empty path.");
        if (path.Contains('\0')) throw new UserError($"{option} '{path}' contains a NUL character.");
        if (File.Exists(path)) throw new UserError($"{option} '{path}' is a file, not a directory.");
        return path;
    }

    private static string Fmt(double v) => double.IsPositiveInfinity(v) ? "∞" : double.IsNegativeInfinity(v) ? "-∞" : v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
}
