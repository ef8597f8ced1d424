using System.Text.RegularExpressions;
using EmaPg.Common;
using EmaPg.Environments.Search;
using EmaPg.Rewards;

namespace EmaPg.Tests.Environments.Search;

public class SearchWorldTests
{
    private static readonly SearchWorld World = SearchWorld.Generate(new SearchWorldOptions());

    [Fact]
    public void TheWorldIsDeterministicBySeed()
    {
        var again = SearchWorld.Generate(new SearchWorldOptions());
        Assert.Equal(World.Corpus, again.Corpus);
        Assert.Equal(World.Train.Select(Flat), again.Train.Select(Flat));
        Assert.Equal(World.Test.Select(Flat), again.Test.Select(Flat));
        var other = SearchWorld.Generate(new SearchWorldOptions { Seed = 1 });
        Assert.NotEqual(World.Corpus.Select(p => p.Contents), other.Corpus.Select(p => p.Contents));
        // A pinned passage: a change of the generator (and of every run's data) must be deliberate.
        Assert.Equal(World.Corpus[0], SearchWorld.Generate(new SearchWorldOptions()).Corpus[0]);
    }

    private static string Flat(WorldQuestion q) => $"{q.Id}|{q.Kind}|{q.Question}|{string.Join(",", q.GoldenAnswers)}|{string.Join(",", q.Hops)}";

    [Fact]
    public void SizesSplitAndNamesAreAsSpecified()
    {
        Assert.Equal(15 + 150 + 1500 + 1000, World.Corpus.Count);
        Assert.Equal(World.Corpus.Count, World.Corpus.Select(p => p.Id).Distinct().Count());
        Assert.Equal(World.Corpus.Count, World.Corpus.Select(p => p.Title).Distinct().Count());
        Assert.Equal(150 + 3 * 1500 + 5 * 1000, World.Train.Count + World.Test.Count);
        // Whole subjects are held out: no test subject is a train subject.
        var trainSubjects = World.Train.Select(q => q.Hops[0].PassageId).ToHashSet();
        Assert.DoesNotContain(World.Test, q => trainSubjects.Contains(q.Hops[0].PassageId));
        int testSubjects = World.Test.Select(q => q.Hops[0].PassageId).Distinct().Count();
        Assert.Equal(Math.Round(0.1 * (150 + 1500 + 1000)), testSubjects);
        // Both 1- and 2-hop questions on both sides.
        foreach (var split in new[] { World.Train, World.Test })
            Assert.Equal([1, 2], split.Select(q => q.Hops.Count).Distinct().Order());
        Assert.Contains("must be in (0, 1)", Assert.Throws<UserError>(() => SearchWorld.Generate(new SearchWorldOptions { TestFraction = 1 })).Message);
    }

    [Fact]
    public void WithoutRetrievalTheBestGuessPerKindIsRarelyRightAndTheTestOrderMixesKinds()
    {
        // Answering each kind with its most frequent training answer: what a policy can know without searching.
        double baseline = SearchWorld.NoRetrievalBaseline(World.Train, World.Test);
        Assert.InRange(baseline, 0.0, 0.08);
        // The guess is per kind: "x" for kind k (2 of 3), "z" for kind m; a test question of a kind never seen scores 0.
        static WorldQuestion Q(string kind, string answer) => new("", kind, "?", [answer], []);
        Assert.Equal(2.0 / 5, SearchWorld.NoRetrievalBaseline([Q("k", "x"), Q("k", "y"), Q("k", "x"), Q("m", "z")],
            [Q("k", "x"), Q("k", "y"), Q("m", "z"), Q("m", "x"), Q("n", "x")]), 12);
        // The search preset's evaluation (its first eval_problems test questions) sees 1- and 2-hop questions of most kinds.
        var first = World.Test.Take(EmaPg.Training.ConfigFile.Resolve("search", null, []).EvalProblems).ToList();
        Assert.Equal([1, 2], first.Select(q => q.Hops.Count).Distinct().Order());
        Assert.True(first.Select(q => q.Kind).Distinct().Count() >= 7, string.Join(",", first.Select(q => q.Kind).Distinct()));
    }

    [Fact]
    public void EveryAnswerIsDerivableFromTheCorpusHopByHop()
    {
        var byId = World.Corpus.ToDictionary(p => p.Id);
        Assert.All(World.Corpus, p => Assert.All(p.Contents, c => Assert.Contains(c, SearchWorld.Alphabet)));
        var titleCount = World.Corpus.GroupBy(p => p.Title).ToDictionary(g => g.Key, g => g.Count());
        foreach (var q in World.Train.Concat(World.Test))
        {
            Assert.Contains(q.Hops[0].Entity, q.Question);
            for (int h = 0; h < q.Hops.Count; h++)
            {
                var passage = byId[q.Hops[h].PassageId];
                Assert.Equal($"\"{q.Hops[h].Entity}\"", passage.Title);
                Assert.Equal(1, titleCount[passage.Title]);
                string next = h + 1 < q.Hops.Count ? q.Hops[h + 1].Entity : q.GoldenAnswers[0];
                Assert.True(Regex.IsMatch(passage.Text, $@"\b{Regex.Escape(next)}\b"), $"{q.Id}: '{next}' is not in {passage.Id}: {passage.Text}");
            }
            Assert.All(q.Question + q.GoldenAnswers[0], c => Assert.Contains(c, SearchWorld.Alphabet));
            // The answer itself is never in the question (the model has to find it).
            Assert.DoesNotContain(q.GoldenAnswers[0], q.Question);
        }
    }

    [Fact]
    public void Bm25FindsEveryHopAndTheDemonstrationsEndInTheGoldenAnswer()
    {
        using var index = Bm25Index.InMemory(World.Corpus);
        var codec = SearchRolloutTests.Codec;
        // Every entity a question makes the model search for: its passage is the top BM25 hit for its name.
        var hops = World.Train.Concat(World.Test).SelectMany(q => q.Hops).Distinct().ToList();
        var found = index.Retrieve(hops.Select(h => h.Entity).ToList(), 3);
        var misses = hops.Where((h, i) => found[i][0].Document.Id != h.PassageId).Select(h => h.Entity).ToList();
        Assert.True(misses.Count == 0, $"{misses.Count} of {hops.Count} entities are not the top hit: {string.Join(", ", misses.Take(10))}");

        foreach (var (q, i) in World.Test.Take(200).Select((q, i) => (q, i)))
        {
            bool terse = i % 2 == 1;
            var demo = Demonstrations.For(q, index, topK: 3, terse);
            Assert.NotNull(demo);
            Assert.Equal(2 * q.Hops.Count + 1, demo.Count);
            var turnTexts = demo.Where(s => !s.IsObservation).Select(s => s.Text).ToList();
            Assert.All(turnTexts.SkipLast(1), t => Assert.Equal(AgentActionKind.Search, SearchR1Protocol.ParseAction(t).Kind));
            var last = SearchR1Protocol.ParseAction(turnTexts[^1]);
            Assert.Equal(AgentActionKind.Answer, last.Kind);
            Assert.Equal(1.0, new ExactMatchReward().Score(turnTexts[^1], EmaPg.Data.PromptExample.ForAnswers([.. q.GoldenAnswers])));
            // Terse: the actions alone, e.g. "<search> Name </search>" and "<answer> a </answer>".
            if (terse) Assert.All(turnTexts, t => Assert.Matches(@"^<(search|answer)> [^<>]+ </\1>$", t));
            else Assert.All(turnTexts, t => Assert.StartsWith("<think>", t));
        }
        // A hop whose passage is not retrieved gives no demonstration.
        var q1 = World.Test.First(q => q.Hops.Count == 1);
        Assert.Null(Demonstrations.For(q1 with { Hops = [q1.Hops[0] with { PassageId = "elsewhere" }] }, index, 3));

        // Encoding: observations are the rollout's <information> blocks with loss mask 0, the rest is the model's text.
        var q0 = World.Test.First(q => q.Hops.Count == 2);
        var segments = Demonstrations.For(q0, index, 3)!;
        var (ids, mask) = Demonstrations.Encode(segments, codec, 500);
        Assert.Equal(string.Concat(segments.Where(s => !s.IsObservation).Select(s => s.Text)), codec.Decode(ids.Where((_, j) => mask[j] == 1).ToArray()));
        Assert.Equal(string.Concat(segments.Where(s => s.IsObservation).Select(s => SearchR1Protocol.Observation(s.Text))), codec.Decode(ids.Where((_, j) => mask[j] == 0).ToArray()));
    }
}
