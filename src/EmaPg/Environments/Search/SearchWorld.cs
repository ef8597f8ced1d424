using System.Text.Json.Nodes;
using EmaPg.Common;

namespace EmaPg.Environments.Search;

/// <summary>Size and seed of a generated world; the split holds out whole subject entities.</summary>
public sealed record SearchWorldOptions
{
    public int Seed { get; init; }
    public int Countries { get; init; } = 15;
    public int Cities { get; init; } = 150;
    public int People { get; init; } = 1500;
    public int Companies { get; init; } = 1000;
    /// <summary>Fraction of subject entities whose questions form the test split.</summary>
    public double TestFraction { get; init; } = 0.1;

    public SearchWorldOptions Validate()
    {
        Check.Range("world countries", Countries, 2, 200);
        Check.Range("world cities", Cities, Countries, 5000);
        Check.Range("world people", People, 1, 50_000);
        Check.Range("world companies", Companies, 0, 50_000);
        Check.Range("world test fraction", TestFraction, 0.0, 1.0, minInclusive: false, maxInclusive: false);
        return this;
    }
}

/// <summary>
/// A question about the world with its golden answers. <see cref="Hops"/> lists, per hop, the entity to search for and the
/// id of the passage that states the fact: the answer is in the last hop's passage, and each earlier passage names the next
/// hop's entity.
/// </summary>
public sealed record WorldQuestion(string Id, string Kind, string Question, IReadOnlyList<string> GoldenAnswers, IReadOnlyList<WorldHop> Hops);

/// <summary>One hop: search <see cref="Entity"/>, read passage <see cref="PassageId"/>.</summary>
public sealed record WorldHop(string Entity, string PassageId);

/// <summary>
/// An embedded world for the search environment that no model can have memorised: fictional countries, cities, people and
/// companies with attributes and relations, one short passage each (the corpus), and questions needing one hop ("Where was
/// X born?") or two ("In which country was the founder of Y born?"). Every name word is unique to its entity, so searching an
/// entity's name finds its passage. Deterministic for a seed.
/// </summary>
public sealed class SearchWorld
{
    /// <summary>Every character the world, its questions, demonstrations and the Search-R1 protocol use: printable ASCII and newline, for a <see cref="Tasks.CharTokenizer"/>.</summary>
    public static readonly string Alphabet = string.Concat(Enumerable.Range(32, 95).Select(c => (char)c)) + "\n";

    public required IReadOnlyList<Passage> Corpus { get; init; }
    public required IReadOnlyList<WorldQuestion> Train { get; init; }
    public required IReadOnlyList<WorldQuestion> Test { get; init; }

    private sealed record Country(string Name, string Id) { public City Capital = null!; }
    private sealed record City(string Name, string Id, Country Country);
    private sealed record Person(string Name, string Id, string Profession, City Birthplace, int Year);
    private sealed record Company(string Name, string Id, Person Founder, City Base, int Year);

    private static readonly string[] Professions =
        ["mason", "weaver", "painter", "sailor", "baker", "chemist", "poet", "brewer", "surveyor", "glassblower", "carpenter", "astronomer", "printer", "potter", "cartographer"];
    private static readonly string[] CompanyKinds = ["Works", "Mills", "Foundry", "Press", "Guild", "Traders", "Forge", "Looms"];
    private static readonly string[] Onsets = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "qu", "r", "s", "st", "t", "tr", "v", "z", "th", "sh"];
    private static readonly string[] Vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"];
    private static readonly string[] Codas = ["", "n", "r", "l", "s", "th", "nd", "rk", "m", "x"];

    public static SearchWorld Generate(SearchWorldOptions options)
    {
        options.Validate();
        var rng = new Random(options.Seed);
        var used = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        string Word(int syllables, string suffix = "")
        {
            while (true)
            {
                var s = string.Concat(Enumerable.Range(0, syllables).Select(i => Onsets[rng.Next(Onsets.Length)] + Vowels[rng.Next(Vowels.Length)] + (i == syllables - 1 ? Codas[rng.Next(Codas.Length)] : "")));
                s = char.ToUpperInvariant(s[0]) + s[1..] + suffix;
                // Never an English word of the templates or another entity's word: a name's words identify the entity.
                if (s.Length >= 4 && !Reserved.Contains(s) && used.Add(s)) return s;
            }
        }

        var countries = Enumerable.Range(0, options.Countries).Select(i => new Country(Word(2, rng.Next(2) == 0 ? "ia" : "land"), $"country-{i}")).ToList();
        var cities = Enumerable.Range(0, options.Cities).Select(i => new City(Word(2, rng.Next(3) == 0 ? "port" : ""), $"city-{i}", countries[i % countries.Count])).ToList();
        foreach (var c in countries) c.Capital = cities.First(x => x.Country == c);
        var people = Enumerable.Range(0, options.People).Select(i => new Person($"{Word(2)} {Word(rng.Next(1, 3))}", $"person-{i}",
            Professions[rng.Next(Professions.Length)], cities[rng.Next(cities.Count)], 1700 + rng.Next(250))).ToList();
        var companies = Enumerable.Range(0, options.Companies).Select(i =>
        {
            var founder = people[rng.Next(people.Count)];
            return new Company($"{Word(2)} {CompanyKinds[rng.Next(CompanyKinds.Length)]}", $"company-{i}", founder, cities[rng.Next(cities.Count)],
                Math.Min(1990, founder.Year + 20 + rng.Next(40)));
        }).ToList();

        var corpus = new List<Passage>();
        corpus.AddRange(countries.Select(c => P(c.Id, c.Name, $"{c.Name} is a country. Its capital is {c.Capital.Name}.")));
        corpus.AddRange(cities.Select(c => P(c.Id, c.Name, $"{c.Name} is a city in {c.Country.Name}.")));
        corpus.AddRange(people.Select(p => P(p.Id, p.Name, $"{p.Name} is a {p.Profession} born in {p.Birthplace.Name} in {p.Year}.")));
        corpus.AddRange(companies.Select(c => P(c.Id, c.Name, $"{c.Name} was founded by {c.Founder.Name} in {c.Year}. It is based in {c.Base.Name}.")));

        // Questions by subject entity; the split holds out whole subjects.
        var bySubject = new List<List<WorldQuestion>>();
        foreach (var c in cities)
            bySubject.Add([Q("city-country", $"In which country is {c.Name}?", c.Country.Name, H(c.Name, c.Id))]);
        foreach (var p in people)
            bySubject.Add(
            [
                Q("birthplace", $"Where was {p.Name} born?", p.Birthplace.Name, H(p.Name, p.Id)),
                Q("profession", $"What is the profession of {p.Name}?", p.Profession, H(p.Name, p.Id)),
                Q("birth-country", $"In which country was {p.Name} born?", p.Birthplace.Country.Name, H(p.Name, p.Id), H(p.Birthplace.Name, p.Birthplace.Id)),
            ]);
        foreach (var c in companies)
            bySubject.Add(
            [
                Q("founder", $"Who founded {c.Name}?", c.Founder.Name, H(c.Name, c.Id)),
                Q("founding-year", $"When was {c.Name} founded?", c.Year.ToString(System.Globalization.CultureInfo.InvariantCulture), H(c.Name, c.Id)),
                Q("founder-birthplace", $"Where was the founder of {c.Name} born?", c.Founder.Birthplace.Name, H(c.Name, c.Id), H(c.Founder.Name, c.Founder.Id)),
                Q("founder-profession", $"What is the profession of the founder of {c.Name}?", c.Founder.Profession, H(c.Name, c.Id), H(c.Founder.Name, c.Founder.Id)),
                Q("company-country", $"In which country is {c.Name} based?", c.Base.Country.Name, H(c.Name, c.Id), H(c.Base.Name, c.Base.Id)),
            ]);
        var order = Enumerable.Range(0, bySubject.Count).OrderBy(_ => rng.Next()).ToArray();
        int testSubjects = Math.Max(1, (int)Math.Round(options.TestFraction * bySubject.Count));
        // Test questions in a seeded random order: an evaluation of the first n (eval_problems) sees every kind, not the cities' alone.
        var test = order.Take(testSubjects).OrderBy(i => i).SelectMany(i => bySubject[i]).OrderBy(_ => rng.Next()).ToList();
        var train = order.Skip(testSubjects).OrderBy(i => i).SelectMany(i => bySubject[i]).ToList();
        return new SearchWorld { Corpus = corpus, Train = Number(train, "train"), Test = Number(test, "test") };

        static Passage P(string id, string title, string text) => new(id, Passage.ContentsOf(title, text));
        static WorldHop H(string entity, string passageId) => new(entity, passageId);
        static WorldQuestion Q(string kind, string question, string answer, params WorldHop[] hops) => new("", kind, question, [answer], hops);
        static List<WorldQuestion> Number(List<WorldQuestion> qs, string split) => qs.Select((q, i) => q with { Id = $"{split}-{i}" }).ToList();
    }

    /// <summary>
    /// The no-retrieval baseline: exact match on <paramref name="test"/> of answering every question with the most frequent
    /// golden answer of its kind in <paramref name="train"/> (the best a policy can do from the questions alone, since the
    /// test subjects never occur in training).
    /// </summary>
    public static double NoRetrievalBaseline(IReadOnlyList<WorldQuestion> train, IReadOnlyList<WorldQuestion> test)
    {
        var guess = train.GroupBy(q => q.Kind).ToDictionary(g => g.Key,
            g => g.GroupBy(q => q.GoldenAnswers[0]).OrderByDescending(a => a.Count()).ThenBy(a => a.Key, StringComparer.Ordinal).First().Key);
        return test.Count == 0 ? 0.0 : test.Count(q => guess.TryGetValue(q.Kind, out var a) && q.GoldenAnswers.Contains(a)) / (double)test.Count;
    }

    // Words of the passage and question templates (capitalised, as a generated word would be).
    private static readonly HashSet<string> Reserved = new(StringComparer.OrdinalIgnoreCase)
        { "Where", "What", "When", "Which", "Born", "Based", "Founded", "Founder", "Country", "City", "Capital", "Profession", "Works", "Mills", "Press", "Guild", "Forge", "Looms", "Traders", "Foundry" };

    /// <summary>The corpus as Search-R1 JSONL ({"id","contents"} per line), for <c>emapg index build</c>.</summary>
    public void WriteCorpus(string path) =>
        File.WriteAllLines(path, Corpus.Select(p => new JsonObject { ["id"] = p.Id, ["contents"] = p.Contents }.ToJsonString()));

    /// <summary>Questions as Search-R1's QA JSONL ({"id","question","golden_answers","data_source"} per line).</summary>
    public static void WriteQuestions(string path, IEnumerable<WorldQuestion> questions) =>
        File.WriteAllLines(path, questions.Select(q => new JsonObject
        {
            ["id"] = q.Id, ["question"] = q.Question, ["golden_answers"] = new JsonArray(q.GoldenAnswers.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray()),
            ["data_source"] = "emapg-world",
        }.ToJsonString()));
}
