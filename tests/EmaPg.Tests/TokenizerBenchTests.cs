using EmaPg.Bench;
using EmaPg.Tests.Tokenization;

namespace EmaPg.Tests;

/// <summary>
/// `emapg bench tokenizer`: both libraries are run on every call, HF's ids are its goldens', and the counts the
/// report gives add up. Never asserts on time (the machine is shared).
/// </summary>
public class TokenizerBenchTests
{
    [Fact]
    public void ReportsBothLibrariesOnBothWorkloadsAndHfParityOnItsGoldens()
    {
        string input = Path.Combine(Path.GetTempPath(), $"emapg-bench-tok-{Guid.NewGuid():N}.txt");
        File.WriteAllText(input, "Hello world\nThe answer is $\\boxed{42}$.\n\n<|im_start|>user\nhi<|im_end|>\n");
        string golden = Path.Combine(TokenizerFixtures.FixtureDir, "hf", "tokenizers", "qwen2_5.json");
        try
        {
            var rep = TokenizerBench.Run(new TokenizerBenchOptions { ModelDir = TokenizerFixtures.ModelDir("qwen2_5"), InputPath = input, Reps = 2, Goldens = [golden] });
            Assert.Equal(4, rep.Rows.Count);
            Assert.Equal(["document", "lines"], rep.Rows.Select(r => r.Workload).Distinct());
            Assert.All(rep.Rows.Where(r => r.Workload == "lines"), r => Assert.Equal(4, r.Calls));
            Assert.All(rep.Rows.Where(r => r.Library.StartsWith("Tokenizers.DotNet")), r => Assert.Equal(r.Calls, r.CallsEqualToHf));
            var hf = rep.Parity.Single(p => p.Library.StartsWith("Tokenizers.DotNet"));
            Assert.Equal((96, 96), (hf.Texts, hf.Equal));
            Assert.Empty(hf.FirstMismatches);
            var ml = rep.Parity.Single(p => p.Library.StartsWith("Microsoft.ML"));
            Assert.Equal(96, ml.Texts);
            Assert.Equal(ml.Texts - ml.Equal == 0, ml.FirstMismatches.Count == 0);
            Assert.Equal(["document", "lines"], rep.HfOverMlTokensPerSecond.Keys.Order());
        }
        finally { File.Delete(input); }
    }
}
