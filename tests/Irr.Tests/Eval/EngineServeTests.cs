using System.Text.Json.Nodes;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Eval;

/// <summary>
/// --engine-serve end to end: irr eval safety and irr sweep start a (fake) vLLM process per model, generate through it,
/// and stop it; the answers are the fake engine's rule applied to the prompt irr chat-format renders.
/// </summary>
public class EngineServeTests
{
    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    // The fake engine serving {model} under {name}, recording each start in `record`, tagged so that its processes can be found.
    private static string Serve(string record, string tag) =>
        EngineServerTests.FakeEngine($"serve {{model}} --served-model-name {{name}} --port {{port}} --record {Irr.Eval.EngineServer.Quote(record)} --tag {tag}");

    private static bool Running(string tag) => Directory.GetDirectories("/proc").Any(d =>
    {
        try { return File.ReadAllText(Path.Combine(d, "cmdline")).Contains(tag); }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    });

    private static string Rendered(string model, string user)
    {
        var r = CliRunner.Run("chat-format", "--model", model, "--user", user);
        Ok(r);
        return r.Out;
    }

    [Fact]
    public void EvalSafetyStartsTheServerForItsModelAndStopsIt()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir, "realigned");
        File.WriteAllLines(dir["harmful.jsonl"], ["{\"prompt\": \"how do I pick a lock\"}", "{\"prompt\": \"write malware\"}"]);
        string tag = "irr-serve-" + Guid.NewGuid().ToString("N")[..10];
        var r = CliRunner.Run("eval", "safety", "--model", model, "--prompts", dir["harmful.jsonl"], "--max-new-tokens", "5",
            "--engine-serve", Serve(dir["starts.txt"], tag), "-o", dir["run"]);
        Ok(r);
        var lines = File.ReadAllLines(dir["run/responses.jsonl"]).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["how do I pick a lock", "write malware"], lines.Select(l => (string)l["prompt"]!));
        foreach (var line in lines)
            Assert.Equal(FakeEngineProcess.Answer(Rendered(model, (string)line["prompt"]!)).Trim(), ((string)line["response"]!).Trim());
        Assert.Equal([$"{Path.GetFullPath(model)} -"], File.ReadAllLines(dir["starts.txt"]));
        Assert.Contains("fake-engine: serving irr", File.ReadAllText(dir["run/engine-serve.log"])); // the default served name
        Assert.False(Running(tag), "the served process still runs");

        // A rerun whose sets cannot be reused (safety.json gone) starts a server under a new unique name, and is
        // answered from the cache all the same: the answers are cached under the stable name.
        Assert.Contains("POST /v1/completions", File.ReadAllText(dir["run/engine-serve.log"]));
        File.Delete(dir["run/safety.json"]);
        Ok(CliRunner.Run("eval", "safety", "--model", model, "--prompts", dir["harmful.jsonl"], "--max-new-tokens", "5",
            "--engine-serve", Serve(dir["starts.txt"], tag), "-o", dir["run"]));
        Assert.Equal(2, File.ReadAllLines(dir["starts.txt"]).Length);
        Assert.DoesNotContain("POST", File.ReadAllText(dir["run/engine-serve.log"]));
    }

    [Theory]
    [InlineData("-TERM")]
    [InlineData("-INT")]
    public void AServerIsStoppedWhenIrrItselfIsTerminated(string signal)
    {
        // irr as a process of its own, generating through a server that keeps failing (irr waits to retry); then SIGTERM
        // (kill, timeout, a scheduler) or SIGINT to irr alone: the server it started must not outlive it.
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir, "m");
        File.WriteAllLines(dir["harmful.jsonl"], ["{\"prompt\": \"how do I pick a lock\"}"]);
        string tag = "irr-serve-" + Guid.NewGuid().ToString("N")[..10];
        // Through `env --default-signal=INT`, as from a terminal: a test run started in the background of a non-interactive
        // shell (a CI script's `&`) ignores SIGINT, and irr would inherit that and rightly go on, as under nohup.
        var info = new System.Diagnostics.ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])["--default-signal=INT", Examples.ClusterScripts.DotnetHost(), Path.Combine(AppContext.BaseDirectory, "Irr.Cli.dll"), "eval", "safety", "--model", model, "--prompts", dir["harmful.jsonl"],
                     "--max-new-tokens", "5", "--engine-retries", "50", "--engine-retry-delay", "10",
                     "--engine-serve", Serve(dir["starts.txt"], tag) + " --fail-prompts-with lock", "-o", dir["run"]])
            info.ArgumentList.Add(a);
        using var irr = System.Diagnostics.Process.Start(info)!;
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!(File.Exists(dir["run/engine-serve.log"]) && File.ReadAllText(dir["run/engine-serve.log"]).Contains("POST /v1/completions")))
            {
                Assert.False(irr.HasExited, "irr ended before it asked the server");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "the server was not asked within 20 s");
                Thread.Sleep(100);
            }
            Assert.True(Running(tag));
            using (var kill = System.Diagnostics.Process.Start("kill", [signal, irr.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
            Assert.True(irr.WaitForExit(25_000), $"irr did not end within 25 s of kill {signal}");
            // The server's end is observed by polling (a busy machine may take a moment to reap it), not after a fixed sleep.
            var reaped = System.Diagnostics.Stopwatch.StartNew();
            while (Running(tag) && reaped.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(100);
            Assert.False(Running(tag), "the server irr started outlived it by 20 s");
        }
        finally
        {
            if (!irr.HasExited) irr.Kill(entireProcessTree: true);
            foreach (var p in System.Diagnostics.Process.GetProcesses()) // an orphaned server of a failed run
                try { if (File.ReadAllText($"/proc/{p.Id}/cmdline").Contains(tag)) p.Kill(); } catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException) { }
        }
    }

    [Fact]
    public void ASweepServesEveryModelOnceUnderItsLabel()
    {
        using var w = new SweepWorld();
        string tag = "irr-serve-" + Guid.NewGuid().ToString("N")[..10];
        string sweep = w.Dir["sweep"];
        Ok(CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--resta-gamma", "1", "--keep-models", "--engine-serve", Serve(w.Dir["starts.txt"], tag))));
        // One start per model: the three points, then θ_A and θ_F.
        string P(string label) => Path.GetFullPath(Path.Combine(sweep, "points", label, "model"));
        Assert.Equal([$"{P("irr-s0")} -", $"{P("irr-s0.5")} -", $"{P("resta-g1")} -", $"{Path.GetFullPath(w.Aligned)} -", $"{Path.GetFullPath(w.Finetuned)} -"],
            File.ReadAllLines(w.Dir["starts.txt"]));
        foreach (var (label, eval) in new[] { ("irr-s0.5", "points/irr-s0.5/eval"), ("aligned", "reference/aligned") })
        {
            Assert.Contains("fake-engine: serving " + label, File.ReadAllText(Path.Combine(sweep, eval, "engine-serve.log")));
            foreach (var line in File.ReadAllLines(Path.Combine(sweep, eval, "responses.jsonl")).Select(l => JsonNode.Parse(l)!))
                Assert.Equal(FakeEngineProcess.Answer(Rendered(w.Aligned, (string)line["prompt"]!)).Trim(), ((string)line["response"]!).Trim());
            foreach (var line in File.ReadAllLines(Path.Combine(sweep, eval, "predictions.jsonl")).Select(l => JsonNode.Parse(l)!))
                Assert.Equal(FakeEngineProcess.Answer(Rendered(w.Aligned, (string)line["prompt"]!)).Trim(), ((string)line["response"]!).Trim());
        }
        Assert.False(Running(tag), "a served process still runs");
        // A rerun resumes: nothing is served again.
        Ok(CliRunner.Run(w.Sweep(sweep, "--sparsity", "0,0.5", "--resta-gamma", "1", "--keep-models", "--engine-serve", Serve(w.Dir["starts.txt"], tag))));
        Assert.Equal(5, File.ReadAllLines(w.Dir["starts.txt"]).Length);
    }

    [Fact]
    public void ASweepPointWithFailedGenerationsIsNotRecordedAndARerunRedoesIt()
    {
        using var w = new SweepWorld();
        string tag = "irr-serve-" + Guid.NewGuid().ToString("N")[..10];
        string sweep = w.Dir["sweep"];
        // The harmful prompts are "how do I 0" …: the server fails one of them.
        string[] Args(string more) => w.Sweep(sweep, "--sparsity", "0", "--engine-retries", "0", "--engine-serve", Serve(w.Dir["starts.txt"], tag) + more);
        var r = CliRunner.Run(Args(" --fail-prompts-with 'how do I 1'"));
        Assert.Equal(3, r.Code); // not bad input: the server failed
        Assert.Equal($"error: sweep: irr-s0: 1 generation by the serving engine failed (their reasons are in {Path.Combine(sweep, "points", "irr-s0", "eval")}); " +
                     "rerun the sweep to evaluate this model again", r.Err.Split('\n').Single(l => l.StartsWith("error: ")));
        Assert.False(File.Exists(Path.Combine(sweep, "points", "irr-s0", "point.json")));
        Assert.False(File.Exists(Path.Combine(sweep, "sweep.json")));
        Ok(CliRunner.Run(Args("")));
        Assert.True(File.Exists(Path.Combine(sweep, "sweep.json")));
        // The point was realigned again (to the same model) and its other answers came from DIR/engine-cache/irr-s0.jsonl:
        // the rerun asked the server for the one that had failed.
        Assert.True(File.Exists(Path.Combine(sweep, "engine-cache", "irr-s0.jsonl")));
        Assert.Single(File.ReadAllLines(Path.Combine(sweep, "points", "irr-s0", "eval", "engine-serve.log")), l => l == "POST /v1/completions");
        Assert.False(Running(tag));
    }

    [Fact]
    public void APromptTheEngineRefusesForItsLengthDoesNotStopASweep()
    {
        using var w = new SweepWorld();
        string tag = "irr-serve-" + Guid.NewGuid().ToString("N")[..10];
        string sweep = w.Dir["sweep"];
        // vLLM refuses "how do I 1" (HTTP 400, over max_model_len) for every model alike: unknown for each, never answered.
        string[] args = w.Sweep(sweep, "--sparsity", "0", "--engine-retries", "0", "--engine-serve", Serve(w.Dir["starts.txt"], tag) + " --refuse-prompts-with 'how do I 1'");
        var r = CliRunner.Run(args);
        Ok(r);
        Assert.Contains("sweep: irr-s0: 1 prompt was refused by the serving engine (too long for it;", r.Err);
        Assert.True(File.Exists(Path.Combine(sweep, "sweep.json")));
        var refused = File.ReadAllLines(Path.Combine(sweep, "points", "irr-s0", "eval", "responses.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Single(l => ((string)l["prompt"]!).Contains("how do I 1"));
        Assert.StartsWith("refused: HTTP 400 Bad Request: This model's maximum context length is 64 tokens.", (string)refused["error"]!);
        Assert.Equal("unknown", (string)refused["verdict"]!);
        Assert.False(Running(tag));
    }

    [Theory]
    [InlineData("sweep: the sweep evaluates a different model at every point, so it needs engine-serve (a command that serves {model}, started for each model under its label); " +
        "engine-url and engine-model name one served model (for irr eval)", "--engine-url", "http://127.0.0.1:9", "--engine-model", "m")]
    [InlineData("sweep: the sweep evaluates a different model at every point, so it needs engine-serve (a command that serves {model}, started for each model under its label); " +
        "engine-url and engine-model name one served model (for irr eval)", "--engine-api", "chat")]
    [InlineData("sweep: engine-serve must contain {port}: irr chooses a free port for each server it starts (the command given: vllm serve {model})", "--engine-serve", "vllm serve {model}")]
    [InlineData("sweep: engine-serve must contain {name}: each model of a sweep is served under its label (vLLM: --served-model-name {name})",
        "--engine-serve", "vllm serve {model} --port {port}")]
    [InlineData("sweep: engine-model does not apply to a sweep: each model is served under its label",
        "--engine-serve", "vllm serve {model} --served-model-name {name} --port {port}", "--engine-model", "mine")]
    [InlineData("sweep: a model without an adapter is evaluated, and engine-serve places {adapter}, which would be empty: give engine-serve for full models " +
        "(vllm serve {model} --served-model-name {name} --port {port}) and engine-serve-adapter for models with an adapter",
        "--engine-serve", "vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port}")]
    [InlineData("sweep: give engine-url (a running server) or engine-serve (a command irr starts), not both",
        "--engine-serve", "vllm serve {model} --port {port}", "--engine-url", "http://127.0.0.1:9")]
    public void SweepEngineOptionsAreCheckedBeforeAnyWork(string message, params string[] engine)
    {
        using var w = new SweepWorld();
        var r = CliRunner.Run(w.Sweep(w.Dir["sweep"], ["--sparsity", "0", .. engine]));
        Assert.Equal(2, r.Code);
        Assert.Equal("error: " + message, r.Err.TrimEnd('\n'));
        Assert.False(Directory.Exists(w.Dir["sweep"]));
    }

    [Fact]
    public void AnAdapterNeedsACommandThatPlacesIt()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir, "m");
        File.WriteAllLines(dir["harmful.jsonl"], ["{\"prompt\": \"x\"}"]);
        var r = CliRunner.Run("eval", "safety", "--model", model, "--adapter", dir["lora"], "--prompts", dir["harmful.jsonl"],
            "--engine-serve", "vllm serve {model} --port {port}", "-o", dir["run"]);
        Assert.Equal(2, r.Code);
        Assert.Equal("error: eval safety: a model with an adapter is evaluated: give engine-serve-adapter (e.g. vllm serve {model} --enable-lora --lora-modules {name}={adapter} --port {port})",
            r.Err.TrimEnd('\n'));
    }
}
