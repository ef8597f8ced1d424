using EmaPg.Common;
using EmaPg.Rollout;

namespace EmaPg.Tests.Rollout;

/// <summary>The rollout engine's parse of vLLM's and SGLang's responses (Fixtures/serving/, provenance in its README.md).</summary>
public sealed class RolloutWireTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "serving", name));

    // The request behind the completions fixtures: "3+4=" in Qwen2's byte-level vocabulary.
    private static readonly int[] Prompt = [18, 10, 19, 28];

    [Fact]
    public void Parses_vLLM_completions_tokens_sampling_logprobs_and_topk()
    {
        var s = RolloutWire.ParseOpenAi(Fixture("vllm-completions.json"), k: 2, Prompt);
        Assert.Equal(3, s.Count);
        // Choice 0 ran to max_tokens; its first token was the 4th most likely, so vLLM lists it first and then the top 2;
        // position 1 holds k + 1 entries (the sampled token is not among the top 2), position 2 has the sampled token at rank 1.
        Assert.Equal([20, 24, 198], s[0].Tokens);
        Assert.Equal([(float)-4.605170249938965, (float)-3.2188758850097656, (float)-0.07257069647312164], s[0].LogProbs);
        Assert.Equal([[22, 21], [151645, 198], [198, 151645]], s[0].TopK);
        Assert.Equal("length", s[0].FinishReason);
        // Choice 1 ended on EOS (stop_reason null), choice 2 on the stop token 151643 (stop_reason 151643): both keep the stop token.
        Assert.Equal([22, 151645], s[1].Tokens);
        Assert.Equal([(float)-0.21072103083133698, (float)-0.03045920841395855], s[1].LogProbs);
        Assert.Equal([[22, 21], [151645, 198]], s[1].TopK);
        Assert.Equal("stop", s[1].FinishReason);
        Assert.Equal([22, 151643], s[2].Tokens);
        Assert.Equal((float)-5.2983174324035645, s[2].LogProbs[1]);
        Assert.Equal([[22, 21], [151645, 198]], s[2].TopK);
        Assert.Equal("stop", s[2].FinishReason);
        Assert.All(s, x => Assert.Null(x.WeightVersion));
        // k = 1 keeps the best entry of each position, whichever order the server wrote them in.
        Assert.Equal([[22], [151645], [198]], RolloutWire.ParseOpenAi(Fixture("vllm-completions.json"), k: 1, Prompt)[0].TopK);
    }

    [Fact]
    public void An_echoed_prompt_with_its_null_first_logprob_is_dropped_when_it_is_the_requested_prompt()
    {
        var s = Assert.Single(RolloutWire.ParseOpenAi(Fixture("vllm-completions-echo.json"), k: 2, Prompt));
        Assert.Equal([22, 151645], s.Tokens);
        Assert.Equal([(float)-0.21072103083133698, (float)-0.03045920841395855], s.LogProbs);
        Assert.Equal([[22, 21], [151645, 198]], s.TopK);
        // Without the prompt, or with another one, the null log-prob cannot be placed: an error, not a silent shift.
        Assert.Contains("echo", Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi(Fixture("vllm-completions-echo.json"), 2)).Message);
        Assert.Contains("echo", Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi(Fixture("vllm-completions-echo.json"), 2, [18, 10, 20, 28])).Message);
    }

    [Fact]
    public void Token_strings_instead_of_token_ids_are_an_error_naming_return_tokens_as_token_ids()
    {
        var e = Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi(Fixture("vllm-completions-text-tokens.json"), 2, Prompt));
        Assert.Contains("return_tokens_as_token_ids", e.Message);
        Assert.Contains("'7'", e.Message);
    }

    [Fact]
    public void Parses_SGLang_generate_the_same_samples_as_vLLM()
    {
        var s = RolloutWire.ParseSglang(Fixture("sglang-generate.json"), k: 2);
        var v = RolloutWire.ParseOpenAi(Fixture("vllm-completions.json"), k: 2, Prompt);
        Assert.Equal(3, s.Count);
        for (int i = 0; i < 3; i++)
        {
            // The two fixtures hold the same three samples of the same distribution.
            Assert.Equal(v[i].Tokens, s[i].Tokens);
            Assert.Equal(v[i].LogProbs, s[i].LogProbs);
            Assert.Equal(v[i].TopK.Select(t => string.Join(',', t)), s[i].TopK.Select(t => string.Join(',', t)));
            Assert.Equal(v[i].FinishReason, s[i].FinishReason);
            Assert.Equal("3.3", s[i].WeightVersion);
        }
    }

    [Fact]
    public void A_real_SGLang_generate_answer_without_logprobs_is_an_error_naming_return_logprob()
    {
        // SGLang's own documentation run (no return_logprob): the rollout cannot use it.
        var e = Assert.Throws<FormatException>(() => RolloutWire.ParseSglang(Fixture("sglang-generate-docs.json"), 0));
        Assert.Contains("return_logprob", e.Message);
        // With the logprobs it lacks, its shape (output_ids, finish_reason {type, matched}, weight_version) parses.
        var json = Fixture("sglang-generate-docs.json").Replace("\"weight_version\": \"default\",",
            "\"weight_version\": \"default\", \"output_token_logprobs\": [" + string.Join(", ",
                new[] { 12095, 11, 279, 6722, 315, 43479, 198, 36, 624, 32, 5122, 88991, 198, 33, 5122, 32100, 198, 102349, 510, 32, 151643 }.Select(id => $"[-0.5, {id}, null]")) + "],");
        var s = Assert.Single(RolloutWire.ParseSglang(json, 0));
        Assert.Equal(21, s.Tokens.Length);
        Assert.Equal(151643, s.Tokens[^1]);
        Assert.Equal("stop", s.FinishReason);
        Assert.Equal("default", s.WeightVersion);
    }

    [Fact]
    public void Aborted_or_inconsistent_samples_are_errors_not_draws()
    {
        var vllm = Fixture("vllm-completions.json");
        Assert.Contains("abort", Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi(vllm.Replace("\"finish_reason\": \"length\"", "\"finish_reason\": \"abort\""), 2, Prompt)).Message);
        Assert.Contains("stop_reason", Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi(vllm.Replace("\"stop_reason\": 151643", "\"stop_reason\": 151645"), 2, Prompt)).Message);
        Assert.Contains("token_logprobs[1] is null", Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi(vllm.Replace("-3.2188758850097656, -0.07257069647312164]", "null, -0.07257069647312164]"), 2, Prompt)).Message);
        var sglang = Fixture("sglang-generate.json");
        Assert.Contains("abort", Assert.Throws<FormatException>(() => RolloutWire.ParseSglang(sglang.Replace("{\"type\": \"length\", \"length\": 3}", "{\"type\": \"abort\", \"message\": \"Abort in waiting queue\"}"), 2)).Message);
        Assert.Contains("output_ids", Assert.Throws<FormatException>(() => RolloutWire.ParseSglang(sglang.Replace("[20, 24, 198]", "[20, 24, 199]"), 2)).Message);
    }

    [Fact]
    public void Malformed_responses_are_errors_naming_what_is_wrong()
    {
        Assert.Contains("choices", Assert.Throws<FormatException>(() => RolloutWire.ParseOpenAi("{}", 2)).Message);
        // k = 3 needs 3 entries per position; vLLM's position with the sampled token at rank 1 has only 2.
        Assert.Contains("--max-logprobs", Assert.Throws<UserError>(() => RolloutWire.ParseOpenAi(Fixture("vllm-completions.json"), 3, Prompt)).Message);
        Assert.Contains("--max-logprobs", Assert.Throws<UserError>(() => RolloutWire.ParseSglang(Fixture("sglang-generate.json"), 3)).Message);
        Assert.Contains("output_token_logprobs", Assert.Throws<FormatException>(() => RolloutWire.ParseSglang("""{"text": "x", "meta_info": {}}""", 0)).Message);
    }

    [Fact]
    public void Reload_answers_of_SGLang_and_vLLM_are_read()
    {
        RolloutWire.CheckReload(ReloadApi.UpdateWeightsFromDisk, Fixture("sglang-update-weights-from-disk.json"));
        var e = Assert.Throws<InvalidOperationException>(() => RolloutWire.CheckReload(ReloadApi.UpdateWeightsFromDisk, Fixture("sglang-update-weights-from-disk-failed.json")));
        Assert.Contains("repository not found", e.Message);
        RolloutWire.CheckReload(ReloadApi.CollectiveRpc, Fixture("vllm-collective-rpc-reload-weights.json"));
        RolloutWire.CheckReload(ReloadApi.CollectiveRpc, ""); // vLLM answers an empty 200 when the method returns None
        Assert.Throws<FormatException>(() => RolloutWire.CheckReload(ReloadApi.CollectiveRpc, """{"detail": "x"}"""));
    }

    [Fact]
    public void Error_answers_yield_their_message()
    {
        Assert.Equal("Requested sample logprobs of 32, which is greater than max allowed: 20 (parameter=logprobs, value=32)",
            RolloutWire.ErrorMessage(Fixture("vllm-error-max-logprobs.json")));
        Assert.StartsWith("Failed to get weights iterator", RolloutWire.ErrorMessage(Fixture("sglang-update-weights-from-disk-failed.json")));
        Assert.Equal("Internal Server Error", RolloutWire.ErrorMessage("Internal Server Error"));
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
