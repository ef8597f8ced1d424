using EmaPg.Common;
using EmaPg.Rollout;

namespace EmaPg.Tests.Rollout;

/// <summary>The rollout engine's parse of vLLM's and SGLang's documented response shapes (Fixtures/serving/).</summary>
public sealed class RolloutWireTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "serving", name));

    [Fact]
    public void Parses_vLLM_completions_with_token_ids_in_choice_index_order()
    {
        var s = RolloutWire.ParseOpenAi(Fixture("vllm-completions.json"), k: 2);
        Assert.Equal(2, s.Count);
        Assert.Equal([20, 323, 5], s[0].Tokens);
        Assert.Equal([-1.75f, -4.5f, -0.5f], s[0].LogProbs);
        // Position 1 lists the sampled token 323 besides the top 2; q keeps the top 2 only.
        Assert.Equal([[19, 20], [151645, 198], [5, 17]], s[0].TopK);
        Assert.Equal([19, 151645], s[1].Tokens);
        Assert.Equal([-0.25f, -0.0625f], s[1].LogProbs);
        Assert.Null(s[0].WeightVersion);
    }

    [Fact]
    public void Parses_SGLang_generate_the_same_samples()
    {
        var s = RolloutWire.ParseSglang(Fixture("sglang-generate.json"), k: 2);
        var v = RolloutWire.ParseOpenAi(Fixture("vllm-completions.json"), k: 2);
        Assert.Equal(2, s.Count);
        for (int i = 0; i < 2; i++)
        {
            // The fixtures hold the same two samples, in the order of their choice index.
            var other = v[1 - i];
            Assert.Equal(other.Tokens, s[i].Tokens);
            Assert.Equal(other.LogProbs, s[i].LogProbs);
            Assert.Equal(other.TopK.Select(t => string.Join(',', t)), s[i].TopK.Select(t => string.Join(',', t)));
            Assert.Equal("3.3", s[i].WeightVersion);
        }
    }

    [Fact]
    public void Malformed_responses_are_errors_naming_what_is_wrong()
    {
        Assert.Contains("token_id:N", Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi(Fixture("vllm-completions.json").Replace("token_id:19\", \"token_id:151645\"]", "4\", \"token_id:151645\"]"), 2)).Message);
        Assert.Contains("choices", Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi("{}", 2)).Message);
        Assert.Contains("--max-logprobs", Assert.Throws<UserError>(() => RolloutWire.ParseOpenAi(Fixture("vllm-completions.json"), 3)).Message);
        Assert.Contains("output_token_logprobs", Assert.Throws<FormatException>(() => RolloutWire.ParseSglang("""{"text": "x", "meta_info": {}}""", 0)).Message);
    }

    [Fact]
    public void Requests_carry_token_ids_n_stop_ids_and_logprobs()
    {
        var o = RolloutWire.Request(RolloutApi.OpenAi, "m", [1, 2, 3], 4, 0.7, 16, [2], 5);
        Assert.Equal("""{"prompt":[1,2,3],"n":4,"max_tokens":16,"temperature":0.7,"stop_token_ids":[2],"logprobs":5,"return_tokens_as_token_ids":true,"skip_special_tokens":false,"model":"m"}""", o.ToJsonString());
        var g = RolloutWire.Request(RolloutApi.Sglang, null, [1, 2, 3], 4, 0.7, 16, [2], 5);
        Assert.Equal("""{"input_ids":[1,2,3],"sampling_params":{"n":4,"max_new_tokens":16,"temperature":0.7,"stop_token_ids":[2],"skip_special_tokens":false,"no_stop_trim":true},"return_logprob":true,"top_logprobs_num":5,"logprob_start_len":-1}""", g.ToJsonString());
    }
}
