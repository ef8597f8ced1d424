using System.Globalization;

namespace EmaPg.Common;

/// <summary>Comma-separated option lists ("0.2,0.5,0.8"); errors name the option and the bad item.</summary>
public static class ListParse
{
    public static List<double> Doubles(string option, string text, double min, double max, bool minInclusive = true, bool maxInclusive = true)
    {
        var list = new List<double>();
        foreach (var item in Items(option, text))
        {
            if (!double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw new UserError($"{option} must be a comma-separated list of numbers, got '{item}'.");
            list.Add(Check.Range(option, v, min, max, minInclusive, maxInclusive));
        }
        return list;
    }

    public static List<int> Ints(string option, string text, int min, int max)
    {
        var list = new List<int>();
        foreach (var item in Items(option, text))
        {
            if (!int.TryParse(item, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                throw new UserError($"{option} must be a comma-separated list of integers, got '{item}'.");
            list.Add(Check.Range(option, v, min, max));
        }
        return list;
    }

    private static IEnumerable<string> Items(string option, string text)
    {
        var items = (text ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (items.Length == 0) throw new UserError($"{option} must list at least one value.");
        return items;
    }
}
