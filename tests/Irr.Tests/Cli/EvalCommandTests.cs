using System.Text.Json.Nodes;
using Irr.Data;
using Irr.Eval;
using Irr.IO;
using Irr.Model;
using Irr.Tests.Eval;
using Irr.Tests.IO;
using Irr.Text;

namespace Irr.Tests.Cli;

/// <summary>irr eval safety, task and ppl end to end (tiny chat models built in the test, a fake judge server).</summary>
public class EvalCommandTests
{
    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    private static List<JsonNode> Lines(string path) => File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!).ToList();

    private static string GreedyAnswer(string model, string user, int maxNewTokens)
    {
        var tokenizer = PretrainedTokenizer.Load(model);
        using var weights = CheckpointWeights.Open(model);
        var ids = tokenizer.Encode(ChatPrompt.Render(tokenizer, user, null));
        var output = Generation.Generate(new Transformer(weights), [ids], new GenerationOptions { MaxNewTokens = maxNewTokens, EosTokenIds = [260] })[0];
        return tokenizer.Decode(output.Length > 0 && output[^1] == 260 ? output[..^1] : output, skipSpecialTokens: true);
    }

    [Fact]
    public void SafetyJudgesExistingResponses()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir["earlier.jsonl"], [
            """{"set": "catqa", "prompt": "p1", "category": "Illegal/Drug", "response": "Sure, step 1 ..."}""",
            """{"set": "catqa", "prompt": "p2", "category": "Illegal/Drug", "response": "I'm sorry, I can't."}""",
            """{"set": "catqa", "prompt": "p3", "category": "Hate/Race", "response": "Here you go."}""",
            """{"set": "advbench", "prompt": "p4", "response": "抱歉，我不能。"}""",
            """{"prompt": "p5", "response": "Tôi xin lỗi."}""",
        ]);
        var r = CliRunner.Run("eval", "safety", "--responses", dir["earlier.jsonl"], "-o", dir["run"]);
        Ok(r);

        var run = SafetyRun.Load(dir["run"])!;
        Assert.Equal("keyword", run.Judge);
        Assert.Equal(new SafetyCounts(5, 2, 3, 0), run.Overall);
        Assert.Equal(["catqa", "advbench", "earlier"], run.Sets.Select(s => s.Name));
        Assert.Equal(new SafetyCounts(3, 2, 1, 0), run.Sets[0].Counts);
        Assert.Equal([new CategorySafety("Illegal/Drug", new SafetyCounts(2, 1, 1, 0)), new CategorySafety("Hate/Race", new SafetyCounts(1, 1, 0, 0))], run.Sets[0].Categories);
        Assert.Empty(run.Sets[1].Categories);
        Assert.Equal(2.0 / 3, JsonNode.Parse(File.ReadAllText(dir["run/safety.json"]))!["sets"]![0]!["counts"]!["harmful_rate"]!.GetValue<double>(), 1e-12);

        var lines = Lines(dir["run/responses.jsonl"]);
        Assert.Equal(5, lines.Count);
        Assert.Equal(["harmful", "safe", "harmful", "safe", "safe"], lines.Select(l => (string)l["verdict"]!));
        Assert.Equal("earlier", (string)lines[4]["set"]!);
        Assert.Equal("i'm sorry", (string)lines[1]["detail"]!);
        string summary = File.ReadAllText(dir["run/summary.md"]);
        // Each harmful rate with its 95% Wilson interval (statsmodels' proportion_confint(2, 3) and (1, 2), method="wilson").
        Assert.Contains("| catqa | 3 | 2 | 1 | 0 | 66.7 % | 20.8–93.9 % |", summary);
        Assert.Contains("| Illegal/Drug | 2 | 1 | 1 | 0 | 50.0 % | 9.5–90.5 % |", summary);
        Assert.Contains("catqa: harmful rate 66.7 % (2 of 3)", r.Out);

        // Judging the written responses.jsonl again gives the same verdicts; custom markers change them.
        File.WriteAllText(dir["markers.txt"], "step 1\n");
        Ok(CliRunner.Run("eval", "safety", "--responses", dir["run/responses.jsonl"], "--refusal-markers", dir["markers.txt"], "-o", dir["run2"]));
        Assert.Equal(["safe", "harmful", "harmful", "harmful", "harmful"], Lines(dir["run2/responses.jsonl"]).Select(l => (string)l["verdict"]!));
        Assert.Equal(["catqa", "advbench", "earlier"], SafetyRun.Load(dir["run2"])!.Sets.Select(s => s.Name));
        Assert.Equal("keyword:markers.txt", SafetyRun.Load(dir["run2"])!.Judge);
    }

    [Fact]
    public void SetsEvaluatedOneAtATimeCollectInOneRunDirectory()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir["en.jsonl"], ["""{"prompt": "p1", "response": "Sure."}""", """{"prompt": "p2", "response": "I cannot."}"""]);
        File.WriteAllLines(dir["zh.jsonl"], ["""{"prompt": "q1", "response": "好的。"}"""]);
        Ok(CliRunner.Run("eval", "safety", "--responses", dir["en.jsonl"], "-o", dir["run"]));
        Ok(CliRunner.Run("eval", "safety", "--responses", dir["zh.jsonl"], "-o", dir["run"]));
        var run = SafetyRun.Load(dir["run"])!;
        Assert.Equal(["en", "zh"], run.Sets.Select(s => s.Name));
        Assert.Equal(new SafetyCounts(3, 2, 1, 0), run.Overall);
        Assert.Equal(["p1", "p2", "q1"], Lines(dir["run/responses.jsonl"]).Select(l => (string)l["prompt"]!));

        // Evaluating "en" again replaces it in place.
        File.WriteAllLines(dir["en.jsonl"], ["""{"prompt": "p1", "response": "I'm sorry."}"""]);
        Ok(CliRunner.Run("eval", "safety", "--responses", dir["en.jsonl"], "-o", dir["run"]));
        run = SafetyRun.Load(dir["run"])!;
        Assert.Equal(["en", "zh"], run.Sets.Select(s => s.Name));
        Assert.Equal(new SafetyCounts(1, 0, 1, 0), run.Sets[0].Counts);
        Assert.Equal(new SafetyCounts(2, 1, 1, 0), run.Overall);

        // Another judge (here: other markers give the same name "keyword", so use another model label) replaces the run.
        var other = CliRunner.Run("eval", "safety", "--responses", dir["zh.jsonl"], "--model", "other-model", "-o", dir["run"]);
        Ok(other);
        Assert.Contains("replaced", other.Err);
        Assert.Equal(["zh"], SafetyRun.Load(dir["run"])!.Sets.Select(s => s.Name));
    }

    [Fact]
    public void SafetyGeneratesGreedilyAndJudges()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        File.WriteAllText(dir["catqa_small.json"], """{"Illegal Activity": {"Drug": ["how to a", "how to b"]}, "Hate": {"Race": ["how to c"]}}""");
        File.WriteAllText(dir["adv.csv"], "goal,target\nwrite x,Sure\nwrite y,Sure\nwrite z,Sure\n");
        var r = CliRunner.Run("eval", "safety", "--model", model, "--prompts", dir["catqa_small.json"], dir["adv.csv"], "--max-new-tokens", "6",
            "--batch-size", "2", "--limit", "2", "-o", dir["run"]);
        Ok(r);

        var lines = Lines(dir["run/responses.jsonl"]);
        Assert.Equal(["how to a", "how to b", "write x", "write y"], lines.Select(l => (string)l["prompt"]!));
        Assert.Equal(["Illegal Activity/Drug", "Illegal Activity/Drug", null, null], lines.Select(l => (string?)l["category"]));
        foreach (var line in lines)
        {
            string response = (string)line["response"]!;
            Assert.Equal(GreedyAnswer(model, (string)line["prompt"]!, 6), response);
            Assert.Equal(KeywordJudge.Default.Judge(response).Verdict.ToString().ToLowerInvariant(), (string)line["verdict"]!);
        }
        var run = SafetyRun.Load(dir["run"])!;
        Assert.Equal(model, run.Model);
        Assert.Equal(["catqa_small", "adv"], run.Sets.Select(s => s.Name));
        Assert.Equal(4, run.Overall.Total);
        Assert.Equal(lines.Count(l => (string)l["verdict"]! == "harmful"), run.Overall.Harmful);
        Assert.True(File.Exists(dir["run/summary.md"]));

        // The library's evaluation with the sets and the judge in memory (what the demo runs) gives the same run.
        var sets = new[] { PromptSet.Load(dir["catqa_small.json"]), PromptSet.Load(dir["adv.csv"]) }.Select(s => s with { Records = s.Records.Take(2).ToList() }).ToList();
        var library = new EvalSafetyJob { Model = model, Sets = sets, CustomJudge = KeywordJudge.Default, MaxNewTokens = 6, CacheGenerations = false, OutputDir = dir["library"] }.Run();
        var (judged, libraryRun) = (library.Judged, library.Run);
        Assert.Equal(lines.Select(l => (string)l["response"]!), judged.Select(j => j.Response));
        Assert.Equal(run.Overall, libraryRun.Overall);
        Assert.Equal(run.Sets.Select(s => (s.Name, s.Counts)), libraryRun.Sets.Select(s => (s.Name, s.Counts)));
    }

    [Theory]
    // Moved from EvalJobsTests.BadOptions (judge-cache): the judge is a JudgeOptions variant, so the other judge's options are refused as the options are read.
    [InlineData("eval safety: judge-cache applies to judge http only", "--judge-cache", "c.jsonl")]
    [InlineData("eval safety: refusal-markers applies to judge keyword only", "--judge", "http", "--refusal-markers", "k.txt")]
    [InlineData("eval safety: judge must be keyword or http, not \"llm\"", "--judge", "llm")]
    public void OptionsOfTheOtherJudgeAreRefusedInOneLine(string message, params string[] judge)
    {
        using var dir = new TempDir();
        var r = CliRunner.Run(["eval", "safety", "--responses", dir["r.jsonl"], "-o", dir["run"], .. judge]);
        Assert.Equal(2, r.Code);
        Assert.Equal("error: " + message, r.Err.TrimEnd('\n').Split(" (")[0]);
        Assert.False(Directory.Exists(dir["run"]));
    }

    [Fact]
    public void SafetyWithAnHttpJudgeSendsTheKeyAndNeverWritesIt()
    {
        using var dir = new TempDir();
        const string key = "sk-cli-VERY-SECRET-91b2";
        string variable = "IRR_TEST_JUDGE_KEY_" + Guid.NewGuid().ToString("N")[..8];
        Environment.SetEnvironmentVariable(variable, key);
        try
        {
            using var server = new FakeJudgeServer((body, _) =>
            {
                string user = FakeJudgeServer.UserText(body);
                return new(Content: user.Contains("[RESPONSE]\nSure") ? "[[B]]" : user.Contains("[RESPONSE]\nHmm") ? "I cannot decide" : "[[A]]");
            });
            File.WriteAllLines(dir["r.jsonl"], [
                """{"prompt": "p1", "response": "Sure, here it is"}""",
                """{"prompt": "p2", "response": "No."}""",
                """{"prompt": "p3", "response": "Hmm."}""",
            ]);
            string[] args = ["eval", "safety", "--responses", dir["r.jsonl"], "--judge", "http", "--judge-url", server.Url + "/v1", "--judge-model", "tiny-judge",
                "--judge-protocol", "verdict", "--api-key-env", variable, "--judge-timeout", "60", "-o", dir["run"]];
            var r = CliRunner.Run(args);
            Ok(r);
            Assert.Equal(3, server.Requests);
            Assert.All(server.AuthorizationHeaders, h => Assert.Equal("Bearer " + key, h));
            var run = SafetyRun.Load(dir["run"])!;
            Assert.Equal("http:verdict:tiny-judge", run.Judge);
            Assert.Equal(new SafetyCounts(3, 1, 1, 1), run.Overall);
            Assert.Contains("warning: 1 response got no verdict", r.Err);
            Assert.Contains("1 response(s) without a verdict", File.ReadAllText(dir["run/summary.md"]));
            var unknown = Lines(dir["run/responses.jsonl"])[2];
            Assert.Equal(("unknown", "I cannot decide"), ((string)unknown["verdict"]!, (string)unknown["detail"]!));

            // A rerun is served from OUT/judge-cache.jsonl; only the unknown is asked again.
            var again = CliRunner.Run(args);
            Ok(again);
            Assert.Equal(4, server.Requests);
            Assert.Equal(2, File.ReadAllLines(dir["run/judge-cache.jsonl"]).Length);

            foreach (var file in Directory.GetFiles(dir["run"]))
                Assert.DoesNotContain(key, File.ReadAllText(file));
            Assert.DoesNotContain(key, r.Out + r.Err + again.Out + again.Err);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void BadInputExitsWithTwoAndWritesNothing()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        File.WriteAllText(dir["good.json"], """["a"]""");
        File.WriteAllText(dir["broken.jsonl"], "{\"prompt\": \"a\"}\n{\"prompt\": 3}\n");

        void Fails(string expected, params string[] args)
        {
            var (code, _, error) = CliRunner.Run(args);
            Assert.Equal(2, code);
            Assert.Contains(expected, error);
            Assert.DoesNotContain("   at ", error);
            Assert.False(Directory.Exists(dir["out"]), "an output directory was left behind");
        }

        Fails($"eval safety: prompts {dir["missing.json"]}: no such file or directory", "eval", "safety", "--model", model, "--prompts", dir["good.json"], dir["missing.json"], "-o", dir["out"]);
        Fails("broken.jsonl line 2: prompt", "eval", "safety", "--model", model, "--prompts", dir["good.json"], dir["broken.jsonl"], "-o", dir["out"]);
        Fails("eval safety: judge http needs judge-url", "eval", "safety", "--model", model, "--prompts", dir["good.json"], "--judge", "http", "--judge-model", "m", "-o", dir["out"]);
        Fails("IRR_TEST_UNSET_VARIABLE_X", "eval", "safety", "--model", model, "--prompts", dir["good.json"], "--judge", "http", "--judge-url", "http://127.0.0.1:9",
            "--judge-model", "m", "--api-key-env", "IRR_TEST_UNSET_VARIABLE_X", "-o", dir["out"]);
        Fails("eval safety: model is required", "eval", "safety", "--prompts", dir["good.json"], "-o", dir["out"]);
        Fails("not both", "eval", "safety", "--prompts", dir["good.json"], "--responses", dir["good.json"], "-o", dir["out"]);
        Fails($"eval task: data {dir["missing.jsonl"]}: no such file or directory", "eval", "task", "--model", model, "--data", dir["missing.jsonl"], "--metric", "exact", "-o", dir["out"]);
        Fails("eval task: metric must be", "eval", "task", "--model", model, "--data", dir["good.json"], "--metric", "bleu", "-o", dir["out"]);
        Fails("broken.jsonl line 1: missing \"text\"", "eval", "ppl", "--model", model, "--data", dir["broken.jsonl"], "-o", dir["out"]);
    }

    [Fact]
    public void TaskScoresGreedyAnswers()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        // Gold answers: the model's own greedy answer for two examples (computed here, independently of irr eval), a wrong one for the third.
        string a0 = GreedyAnswer(model, "say 0", 5), a1 = GreedyAnswer(model, "say 1", 5);
        File.WriteAllLines(dir["task.jsonl"], [
            new JsonObject { ["instruction"] = "say 0", ["output"] = a0 }.ToJsonString(),
            new JsonObject { ["prompt"] = "say 1", ["response"] = a1 }.ToJsonString(),
            new JsonObject { ["instruction"] = "say 2", ["output"] = "\u2603 never produced" }.ToJsonString(),
        ]);
        var r = CliRunner.Run("eval", "task", "--model", model, "--data", dir["task.jsonl"], "--metric", "exact", "--max-new-tokens", "5", "-o", dir["run"]);
        Ok(r);
        Assert.Contains("accuracy 0.6667 (2 of 3, metric exact)", r.Out);
        var run = TaskRun.Load(dir["run"])!;
        Assert.Equal((3, 2, "exact", dir["task.jsonl"]), (run.Total, run.Correct, run.Metric, run.Data));
        var predictions = Lines(dir["run/predictions.jsonl"]);
        Assert.Equal([true, true, false], predictions.Select(p => (bool)p["correct"]!));
        Assert.Equal(a0, (string)predictions[0]["response"]!);

        // task.json and safety.json live side by side in one run directory.
        File.WriteAllLines(dir["r.jsonl"], ["""{"prompt": "p", "response": "I cannot."}"""]);
        Ok(CliRunner.Run("eval", "safety", "--responses", dir["r.jsonl"], "-o", dir["run"]));
        Assert.NotNull(TaskRun.Load(dir["run"]));
        Assert.NotNull(SafetyRun.Load(dir["run"]));
    }

    [Fact]
    public void PerplexityIsExpOfTheMeanTokenNll()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        string[] texts = ["the cat sat on the mat", "hello world, hello again", "a"];
        File.WriteAllText(dir["texts.txt"], string.Join("\n\n", texts) + "\n");
        var r = CliRunner.Run("eval", "ppl", "--model", model, "--data", dir["texts.txt"], "--max-length", "12", "--batch-size", "2", "-o", dir["run"]);
        Ok(r);

        // Independently: logits of each (truncated) text, log-softmax by hand in double precision.
        var tokenizer = PretrainedTokenizer.Load(model);
        using var weights = CheckpointWeights.Open(model);
        var transformer = new Transformer(weights);
        double nll = 0;
        long count = 0;
        foreach (string text in texts)
        {
            int[] ids = tokenizer.Encode(text, addSpecialTokens: true);
            ids = ids[..Math.Min(ids.Length, 12)];
            float[] logits = transformer.Logits(Batch.Create([ids]));
            int v = weights.Config.VocabSize;
            for (int t = 0; t + 1 < ids.Length; t++)
            {
                var row = logits.AsSpan(t * v, v);
                double max = double.NegativeInfinity;
                foreach (float x in row) max = Math.Max(max, x);
                double sum = 0;
                foreach (float x in row) sum += Math.Exp(x - max);
                nll -= row[ids[t + 1]] - max - Math.Log(sum);
                count++;
            }
        }
        var result = JsonNode.Parse(File.ReadAllText(dir["run/perplexity.json"]))!;
        Assert.Equal(3, (int)result["records"]!);
        Assert.Equal(count, (long)result["tokens"]!);
        Assert.Equal(Math.Exp(nll / count), (double)result["perplexity"]!, 1e-3);
        Assert.Equal(nll / count, (double)result["mean_nll"]!, 1e-5);
        Assert.StartsWith("perplexity ", r.Out);

        // The same texts as JSONL {text} and as a JSON array of strings give the same figure.
        File.WriteAllLines(dir["texts.jsonl"], texts.Select(t => new JsonObject { ["text"] = t }.ToJsonString()));
        File.WriteAllText(dir["texts.json"], new JsonArray(texts.Select(t => (JsonNode)JsonValue.Create(t)).ToArray()).ToJsonString());
        Assert.Equal(r.Out, CliRunner.Run("eval", "ppl", "--model", model, "--data", dir["texts.jsonl"], "--max-length", "12").Out);
        Assert.Equal(r.Out, CliRunner.Run("eval", "ppl", "--model", model, "--data", dir["texts.json"], "--max-length", "12").Out);
    }
}
