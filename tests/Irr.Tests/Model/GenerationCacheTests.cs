using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Model;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Model;

/// <summary>
/// Local generation keeps each answer as it comes (issue 24, "a local evaluation keeps what it has generated"): an
/// interrupted run, run again, generates only what it lacks and gives the same tokens as a run never interrupted. The
/// interruption is what a kill leaves: the cache file of a complete run cut after some answers, with a torn last line.
/// The reference is the same job run without a cache (which decodes every batch).
/// </summary>
public class GenerationCacheTests
{
    private static readonly string[] Users = ["a", "say something longer", "the the", "x", "what is 2 + 2?", "hello there", "z z z z"];

    private static GenerateJob Job(TempDir dir, string model, string output) => new()
    {
        Model = model, Prompts = PromptFile(dir), MaxNewTokens = 6, BatchSize = 3, OutputIds = true, OutputPath = dir[output],
        Overwrite = true, // the tests rerun into the same output (issue 25: generate refuses an existing output without it)
    };

    private static string PromptFile(TempDir dir)
    {
        string path = dir["prompts.jsonl"];
        if (!File.Exists(path)) File.WriteAllLines(path, Users.Select(u => new JsonObject { ["prompt"] = u }.ToJsonString()));
        return path;
    }

    private static List<(string Response, int[] Ids)> Read(string path) => File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!)
        .Select(n => ((string)n["response"]!, n["token_ids"]!.AsArray().Select(i => (int)i!).ToArray())).ToList();

    // What a kill leaves after `kept` answers: the first lines of a complete run's cache and half of the next line.
    private static void Interrupted(string completeCache, string cache, int kept)
    {
        var lines = File.ReadAllLines(completeCache);
        File.WriteAllText(cache, string.Concat(lines.Take(kept).Select(l => l + "\n")) + lines[kept][..(lines[kept].Length / 2)]);
    }

    private static List<string> Warnings(Action action)
    {
        var warnings = new List<string>();
        using (Diagnostics.Listen(warnings.Add)) action();
        return warnings;
    }

    [Fact]
    public void AnInterruptedGenerateResumesWithTheSameTokensAndGeneratesOnlyWhatItLacks()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var plain = Job(dir, model, "reference.jsonl") with { CacheGenerations = false };
        plain.Run();
        Assert.False(File.Exists(plain.GenerationCachePath));
        var reference = Read(dir["reference.jsonl"]);

        var complete = Job(dir, model, "complete.jsonl");
        complete.Run();
        Assert.Equal(reference, Read(dir["complete.jsonl"]), Same);
        Assert.Equal(Users.Length, File.ReadAllLines(complete.GenerationCachePath).Length); // one line per answer

        // Killed after 4 answers (batch 0 and one of batch 1) while writing the fifth.
        var resumed = Job(dir, model, "resumed.jsonl");
        Interrupted(complete.GenerationCachePath, resumed.GenerationCachePath, kept: 4);
        var warnings = Warnings(() => resumed.Run());
        Assert.Empty(warnings); // the torn line is what a kill leaves: ignored without a word
        Assert.Equal(reference, Read(dir["resumed.jsonl"]), Same);
        // Batch 1 is decoded whole (as the uninterrupted run decoded it) and adds its 2 missing answers, batch 2 its one;
        // the torn line is cut off, so every line reads.
        var lines = File.ReadAllLines(resumed.GenerationCachePath);
        Assert.Equal(4 + 2 + 1, lines.Length);
        Assert.All(lines, l => Assert.NotNull(JsonNode.Parse(l)!["key"]));
    }

    private static readonly IEqualityComparer<(string Response, int[] Ids)> Same =
        EqualityComparer<(string, int[])>.Create((a, b) => a.Item1 == b.Item1 && a.Item2.SequenceEqual(b.Item2), a => a.Item1.GetHashCode());

    [Fact]
    public void ACachedAnswerIsUsedOnlyForTheSameModelPromptAndSettings()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var job = Job(dir, model, "out.jsonl");
        job.Run();
        var generated = Read(dir["out.jsonl"]);

        // The first answer in the cache replaced by "hi" and EOS (byte ids 104, 105; <|end|> = 260): a rerun with the same
        // settings takes it as it is (batch 0 is not decoded again) …
        var lines = File.ReadAllLines(job.GenerationCachePath).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        lines[0]["token_ids"] = new JsonArray(104, 105, 260);
        File.WriteAllLines(job.GenerationCachePath, lines.Select(l => l.ToJsonString()));
        job.Run();
        var again = Read(dir["out.jsonl"]);
        Assert.Equal("hi", again[0].Response);
        Assert.Equal([104, 105, 260], again[0].Ids);
        Assert.Equal(generated.Skip(1), again.Skip(1), Same);

        // … and any change to what the answer depends on generates it afresh.
        string config = Path.Combine(model, "config.json");
        foreach (var (what, changed, change) in new (string, GenerateJob, Action?)[]
                 {
                     ("max new tokens", job with { MaxNewTokens = 5 }, null),
                     ("system prompt", job with { SystemPrompt = "Be brief." }, null),
                     ("sampling", job with { Temperature = 0.7f, Seed = 1 }, null),
                     ("top-k", job with { TopK = 3 }, null),
                     ("raw text", job with { NoChatTemplate = true }, null),
                     ("model files", job, () => File.WriteAllText(config, File.ReadAllText(config) + "\n")),
                 })
        {
            change?.Invoke();
            changed.Run();
            Assert.True(Read(dir["out.jsonl"])[0].Response != "hi", $"the answer kept for other settings was reused when the {what} changed");
        }
    }

    [Fact]
    public void SampledAnswersResumeAlikeAndAreTheSameInAnotherProcess()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var sampled = Job(dir, model, "reference.jsonl") with { Temperature = 1.3f, TopP = 0.9f, Seed = 11, CacheGenerations = false };
        sampled.Run();
        var reference = Read(dir["reference.jsonl"]);

        var complete = sampled with { OutputPath = dir["complete.jsonl"], CacheGenerations = true };
        complete.Run();
        var resumed = sampled with { OutputPath = dir["resumed.jsonl"], CacheGenerations = true };
        Interrupted(complete.GenerationCachePath, resumed.GenerationCachePath, kept: 3);
        resumed.Run();
        Assert.Equal(reference, Read(dir["resumed.jsonl"]), Same);

        // irr generate in a process of its own draws the same tokens: each prompt's sampler is seeded alike in every
        // process, so answers kept by one run and those generated by the next belong to one sample.
        var r = IrrProcess.Run(["generate", "--model", model, "--prompts", PromptFile(dir), "--max-new-tokens", "6", "--batch-size", "2",
            "--temperature", "1.3", "--top-p", "0.9", "--seed", "11", "--output-ids", "-o", dir["child.jsonl"]]);
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal(reference, Read(dir["child.jsonl"]), Same);
    }

    [Fact]
    public void EvaluationsResumeFromTheirRunDirectoryWithTheSameResults()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        string prompts = PromptFile(dir);
        string data = dir["task.jsonl"];
        // Other prompts than the safety set's: the same prompt would be the same answer, kept once for both.
        File.WriteAllLines(data, Users.Select(u => new JsonObject { ["prompt"] = "Q: " + u, ["response"] = "x" }.ToJsonString()));
        var safety = new EvalSafetyJob { Model = model, Prompts = [prompts], MaxNewTokens = 6, BatchSize = 2, OutputDir = dir["plain"], CacheGenerations = false };
        var task = new EvalTaskJob { Model = model, Data = data, Metric = "contains", MaxNewTokens = 6, BatchSize = 2, OutputDir = dir["plain"], CacheGenerations = false };
        safety.Run();
        task.Run();
        Assert.False(File.Exists(Path.Combine(dir["plain"], GenerationCache.FileName)));

        safety = safety with { OutputDir = dir["complete"], CacheGenerations = true };
        task = task with { OutputDir = dir["complete"], CacheGenerations = true };
        safety.Run();
        task.Run();
        string cache = Path.Combine(dir["complete"], GenerationCache.FileName);
        Assert.Equal(2 * Users.Length, File.ReadAllLines(cache).Length); // the safety and the task answers, one file

        // Interrupted in the safety evaluation after 3 answers; then the whole evaluation again, into the same directory.
        Directory.CreateDirectory(dir["resumed"]);
        Interrupted(cache, Path.Combine(dir["resumed"], GenerationCache.FileName), kept: 3);
        (safety with { OutputDir = dir["resumed"] }).Run();
        (task with { OutputDir = dir["resumed"] }).Run();
        foreach (string file in new[] { SafetyEvaluation.ResponsesFileName, TaskEvaluation.PredictionsFileName })
            Assert.Equal(File.ReadAllText(Path.Combine(dir["plain"], file)), File.ReadAllText(Path.Combine(dir["resumed"], file)));
        // 3 kept, 1 more of the safety answers' second batch, 3 more safety answers, then the task's 7.
        Assert.Equal(3 + 4 + Users.Length, File.ReadAllLines(Path.Combine(dir["resumed"], GenerationCache.FileName)).Length);
    }

    [Fact]
    public void AStoppedGenerationSaysHowManyAnswersItKeptAndWhere()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        using var chat = ChatModel.Open(model);
        var cache = GenerationCache.Open(dir["cache.jsonl"], model, null);
        var requests = ChatGeneration.Requests(Users, null);
        // A stop during the second batch, as Interruption.ThrowIfRequested ends it (the request itself is process-wide,
        // so the test throws where the check would, once the first batch's 3 answers are kept).
        Assert.Throws<OperationCanceledException>(() => ChatGeneration.Respond(chat.Transformer, chat.Tokenizer, requests, chat.Greedy(6, 3),
            _ => { if (cache.Count >= 3) throw new OperationCanceledException(); }, cache));
        Assert.Contains($"3 of 7 answers kept in {dir["cache.jsonl"]}; run the same command to resume", Interruption.Kept);
        Assert.Equal(3, File.ReadAllLines(dir["cache.jsonl"]).Length);
    }

    [Fact]
    public void AnotherUnreadableLineIsSkippedWithOneWarningAndTheAnswerGeneratedAgain()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        var job = Job(dir, model, "out.jsonl");
        job.Run();
        var generated = Read(dir["out.jsonl"]);
        var lines = File.ReadAllLines(job.GenerationCachePath);
        lines[1] = "{\"key\": \"" + "\u001b[31m";
        File.WriteAllLines(job.GenerationCachePath, lines);
        var warnings = Warnings(() => job.Run());
        Assert.Equal([$"{job.GenerationCachePath}: 1 unreadable line(s) of the generation cache ignored; those answers are generated again"], warnings);
        Assert.Equal(generated, Read(dir["out.jsonl"]), Same);
    }
}
