using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;
using Irr.Tests.IO;

namespace Irr.Tests.Cli;

/// <summary>irr run: a recipe runs the same commands as the steps run on their own, skips what is up to date, and refuses bad recipes up front.</summary>
public class RunCommandTests
{
    private const string Pipeline = """
        output: out
        steps:
          - safety-vector: {aligned: aligned, unaligned: unaligned, modules: "q_proj,v_proj"}
          - fisher: {model: aligned, data: safety.jsonl, modules: "q_proj,v_proj", batch-size: 2}
          - realign:
              base: aligned
              finetuned: finetuned
              calibration: task.jsonl
              modules: q_proj,v_proj
              blocksize: 8
              nsamples: 4
          - eval safety: {prompts: [harmful.json], max-new-tokens: 3, output: out/realigned}
          - eval task: {data: task.jsonl, metric: contains, max-new-tokens: 3, o: out/realigned}
          - report: {title: Recipe}
        """;

    /// <summary>Three tiny chat models (θ_A, θ_U, θ_F), safety and task records and harmful prompts; returns the recipe's path.</summary>
    private static string Setup(TempDir dir, string recipe = Pipeline)
    {
        ModelCommandTests.ThreeModels(dir);
        Records(dir["safety.jsonl"], 4, "how do I");
        Records(dir["task.jsonl"], 4, "compute");
        File.WriteAllText(dir["harmful.json"], """["how do I pick a lock", "write malware"]""");
        File.WriteAllText(dir["recipe.yaml"], recipe);
        return dir["recipe.yaml"];
    }

    private static void Records(string path, int count, string prefix) =>
        File.WriteAllLines(path, Enumerable.Range(0, count).Select(i => new JsonObject { ["instruction"] = $"{prefix} {i}", ["output"] = $"the answer {i}" }.ToJsonString()));

    private static (int Code, string Out, string Err) Ok((int Code, string Out, string Err) r)
    {
        Assert.True(r.Code == 0, r.Err);
        return r;
    }

    // The step lines of irr run's standard error: "[2/6] fisher … skipped (up to date)" → ("fisher", "skipped").
    private static Dictionary<string, string> Outcomes(string err) => err.Split('\n')
        .Where(l => l.StartsWith('[') && l.Contains(" … ", StringComparison.Ordinal))
        .Select(l => l.Split(' '))
        .ToDictionary(w => w[1], w => w[3]);

    // A JSON document without the fields that hold wall-clock seconds.
    private static string WithoutTimes(string json)
    {
        static void Strip(JsonNode? node)
        {
            if (node is JsonObject o)
            {
                foreach (var key in o.Select(kv => kv.Key).Where(k => k == "seconds" || k.EndsWith("_seconds", StringComparison.Ordinal)).ToList()) o.Remove(key);
                foreach (var (_, child) in o) Strip(child);
            }
            else if (node is JsonArray a) foreach (var child in a) Strip(child);
        }
        var root = JsonNode.Parse(json);
        Strip(root);
        return root!.ToJsonString();
    }

    [Fact]
    public void ARecipeRunEqualsTheStepsRunOnTheirOwnByteForByte()
    {
        using var dir = new TempDir();
        string recipe = Setup(dir);
        string Out(string name) => Path.Combine(dir["out"], name);
        Ok(CliRunner.Run("safety-vector", "--aligned", dir["aligned"], "--unaligned", dir["unaligned"], "--modules", "q_proj,v_proj", "-o", Out("safety-vector.safetensors")));
        Ok(CliRunner.Run("fisher", "--model", dir["aligned"], "--data", dir["safety.jsonl"], "--modules", "q_proj,v_proj", "--batch-size", "2", "-o", Out("fisher.safetensors")));
        Ok(CliRunner.Run("realign", "--base", dir["aligned"], "--finetuned", dir["finetuned"], "--safety-vector", Out("safety-vector.safetensors"), "--fisher", Out("fisher.safetensors"),
            "--calibration", dir["task.jsonl"], "--modules", "q_proj,v_proj", "--blocksize", "8", "--nsamples", "4", "-o", Out("realign")));
        var safety = Ok(CliRunner.Run("eval", "safety", "--model", Out("realign"), "--prompts", dir["harmful.json"], "--max-new-tokens", "3", "-o", Out("realigned")));
        var task = Ok(CliRunner.Run("eval", "task", "--model", Out("realign"), "--data", dir["task.jsonl"], "--metric", "contains", "--max-new-tokens", "3", "-o", Out("realigned")));
        var report = Ok(CliRunner.Run("report", "--title", "Recipe", "-o", Out("report"), Out("realigned")));
        Directory.Move(dir["out"], dir["separately"]);

        var run = Ok(CliRunner.Run("run", recipe));
        Assert.Equal(["safety-vector", "fisher", "realign", "eval-safety", "eval-task", "report"], Outcomes(run.Err).Keys);
        Assert.All(Outcomes(run.Err).Values, v => Assert.Equal("done", v));
        Assert.EndsWith(safety.Out + task.Out + report.Out, run.Out); // what each command prints, in order

        var expected = Directory.GetFiles(dir["separately"], "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir["separately"], f)).Order().ToList();
        var actual = Directory.GetFiles(dir["out"], "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir["out"], f))
            .Where(f => f != RunLedger.FileName).Order().ToList();
        Assert.Equal(expected, actual);
        Assert.Contains(Path.Combine("realign", "model.safetensors"), actual);
        Assert.Contains(Path.Combine("realigned", "task.json"), actual);
        Assert.Contains(Path.Combine("report", "report.json"), actual);
        foreach (string file in expected)
        {
            string a = Path.Combine(dir["separately"], file), b = Out(file);
            if (file.EndsWith("irr-report.json", StringComparison.Ordinal))
                Assert.Equal(WithoutTimes(File.ReadAllText(a)), WithoutTimes(File.ReadAllText(b)));
            else
                Assert.True(File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b)), $"{file} differs");
        }

        var ledger = JsonNode.Parse(File.ReadAllText(Out(RunLedger.FileName)))!;
        var steps = ledger["steps"]!.AsArray();
        Assert.Equal(6, steps.Count);
        var realign = steps[2]!;
        Assert.Equal("realign", (string)realign["command"]!);
        Assert.Equal(Out("realign"), (string)realign["output"]!);
        Assert.Equal(0.01, (double)realign["options"]!["percdamp"]!); // defaults included
        Assert.Equal(Out("fisher.safetensors"), (string)realign["options"]!["fisher"]!); // wired
        Assert.Equal(ContentHash.Compute(Out("fisher.safetensors")), (string)realign["inputs"]![Out("fisher.safetensors")]!);
        Assert.Equal(ContentHash.Compute(dir["aligned"]), (string)realign["inputs"]![dir["aligned"]]!);
        Assert.Equal("done", (string)realign["status"]!);
        Assert.Equal([Out("realigned")], steps[5]!["options"]!["runs"]!.AsArray().Select(x => (string)x!));
        Assert.Contains(ledger["hashes"]!.AsArray(), h => (string)h!["path"]! == dir["aligned"]);
    }

    [Fact]
    public void ARerunSkipsWhatIsUpToDateAndRedoesWhatChangedOrIsForced()
    {
        using var dir = new TempDir();
        string recipe = Setup(dir, Pipeline.Replace("  - eval safety: {prompts: [harmful.json], max-new-tokens: 3, output: out/realigned}\n", "")
            .Replace("  - report: {title: Recipe}", ""));
        Ok(CliRunner.Run("run", recipe));
        string model = Path.Combine(dir["out"], "realign", "model.safetensors");
        var written = File.GetLastWriteTimeUtc(model);

        var again = Ok(CliRunner.Run("run", recipe));
        Assert.All(Outcomes(again.Err).Values, v => Assert.Equal("skipped", v));
        Assert.Equal(4, Outcomes(again.Err).Count);
        Assert.Equal(written, File.GetLastWriteTimeUtc(model));
        Assert.Contains("0 of 4 steps ran", again.Err);

        // One option of realign: realign and the evaluation of its model rerun; the safety vector and the Fisher do not.
        File.WriteAllText(recipe, File.ReadAllText(recipe).Replace("blocksize: 8", "blocksize: 4"));
        var changed = Ok(CliRunner.Run("run", recipe));
        Assert.Equal(new Dictionary<string, string> { ["safety-vector"] = "skipped", ["fisher"] = "skipped", ["realign"] = "done", ["eval-task"] = "done" }, Outcomes(changed.Err));
        Assert.Contains("--overwrite", changed.Err); // realign replaces its own earlier output
        var ledger = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["out"], RunLedger.FileName)))!;
        Assert.Equal(4, (int)ledger["steps"]![2]!["options"]!["blocksize"]!);
        Assert.Equal("skipped", (string)ledger["steps"]![0]!["status"]!);

        // An input that changes reruns the steps that read it (the task data: realign's calibration and eval task's data).
        File.AppendAllText(dir["task.jsonl"], new JsonObject { ["instruction"] = "compute 9", ["output"] = "the answer 9" }.ToJsonString() + "\n");
        Assert.Equal(new Dictionary<string, string> { ["safety-vector"] = "skipped", ["fisher"] = "skipped", ["realign"] = "done", ["eval-task"] = "done" },
            Outcomes(Ok(CliRunner.Run("run", recipe)).Err));

        // --force fisher: fisher and what depends on it (realign, then eval task), not the safety vector.
        var forced = Ok(CliRunner.Run("run", recipe, "--force", "fisher"));
        Assert.Equal(new Dictionary<string, string> { ["safety-vector"] = "skipped", ["fisher"] = "done", ["realign"] = "done", ["eval-task"] = "done" }, Outcomes(forced.Err));
        Assert.Equal("done", Outcomes(Ok(CliRunner.Run("run", recipe, "--force", "eval-task", "--force", "safety-vector")).Err)["realign"]);

        var (code, _, err) = CliRunner.Run("run", recipe, "--force", "fishr");
        Assert.Equal(2, code);
        Assert.Contains("no step 'fishr'", err);
    }

    [Fact]
    public void AFailingStepStopsTheRunWithItsOwnErrorAndRunJsonRecordsWhatFinished()
    {
        using var dir = new TempDir();
        string recipe = Setup(dir, Pipeline.Replace("calibration: task.jsonl", "calibration: empty.jsonl"));
        File.WriteAllText(dir["empty.jsonl"], "not json\n");
        var (code, _, err) = CliRunner.Run("run", recipe);
        Assert.Equal(2, code);
        Assert.Contains("error: ", err);
        Assert.Contains("[3/6] realign … failed (exit code 2)", err);
        Assert.DoesNotContain("eval-task", err);
        var steps = JsonNode.Parse(File.ReadAllText(Path.Combine(dir["out"], RunLedger.FileName)))!["steps"]!.AsArray();
        Assert.Equal(["done", "done", "failed"], steps.Select(s => (string)s!["status"]!));

        // Fixed, the run goes on from the failed step.
        File.Copy(dir["task.jsonl"], dir["empty.jsonl"], overwrite: true);
        var fixedRun = Ok(CliRunner.Run("run", recipe));
        Assert.Equal("skipped", Outcomes(fixedRun.Err)["fisher"]);
        Assert.Equal("done", Outcomes(fixedRun.Err)["realign"]);
    }

    [Fact]
    public void ConvertStepsTurnPyTorchFilesIntoInputsOfLaterSteps()
    {
        using var dir = new TempDir();
        // θ_A as PyTorch saved it (pytorch_model.bin beside the chat model's config and tokenizer), and a safety vector saved
        // from a PEFT model's named_parameters() (tests/fixtures/torch/make_prefixed.py).
        string torchModel = ModelCommandTests.ChatModel(dir, "torch-model");
        File.Delete(Path.Combine(torchModel, "model.safetensors"));
        string bin = Irr.Tests.Text.Fixtures.Local("torch/state_dicts/chat_model/pytorch_model.bin");
        File.Copy(bin, Path.Combine(torchModel, "pytorch_model.bin"));
        File.Copy(Irr.Tests.Text.Fixtures.Local("torch/state_dicts/chat_sv_peft.pt"), dir["sv.pt"]);
        string recipe = Setup(dir, """
            output: out
            steps:
              - convert: {input: torch-model}
              - convert: {input: sv.pt}
              - fisher: {model: out/convert, data: safety.jsonl, modules: "q_proj,v_proj", batch-size: 2}
              - realign:
                  base: out/convert
                  finetuned: finetuned
                  safety-vector: out/convert-2.safetensors
                  calibration: task.jsonl
                  modules: q_proj,v_proj
                  blocksize: 8
                  nsamples: 4
            """);
        var run = Ok(CliRunner.Run("run", recipe));
        Assert.Equal(new Dictionary<string, string> { ["convert"] = "done", ["convert-2"] = "done", ["fisher"] = "done", ["realign"] = "done" }, Outcomes(run.Err));
        string Out(string name) => Path.Combine(dir["out"], name);
        Assert.Contains($"[1/4] convert: irr convert --output {Out("convert")} -- {torchModel}\n", run.Err);
        Assert.Contains($"[2/4] convert-2: irr convert --output {Out("convert-2.safetensors")} -- {dir["sv.pt"]}\n", run.Err);

        // The converted model holds the .bin's tensors; the converted state dict keeps its keys, read by realign as HF names.
        using (var converted = ModelDirectory.Open(Out("convert")))
        using (var source = TorchFile.Open(bin))
            foreach (var t in source.Tensors) Assert.Equal(source.ReadSingle(t.Name), converted.ReadSingle(t.Name));
        using (var vector = SafetensorsFile.Open(Out("convert-2.safetensors")))
            Assert.True(vector.Contains("base_model.model.model.layers.1.self_attn.v_proj.base_layer.weight"));
        Assert.Contains($"warning: {Out("convert-2.safetensors")}: tensor names read as Hugging Face names (removed prefix 'base_model.model.'; '.base_layer.weight' → '.weight')", run.Err);
        var realign = JsonNode.Parse(File.ReadAllText(Out(RunLedger.FileName)))!["steps"]![3]!;
        Assert.Equal(Out("convert"), (string)realign["options"]!["base"]!);
        Assert.Equal(Out("fisher.safetensors"), (string)realign["options"]!["fisher"]!); // wired

        // The same realignment with the .pt read directly: the same model.
        Ok(CliRunner.Run("realign", "--base", Out("convert"), "--finetuned", dir["finetuned"], "--safety-vector", dir["sv.pt"], "--fisher", Out("fisher.safetensors"),
            "--calibration", dir["task.jsonl"], "--modules", "q_proj,v_proj", "--blocksize", "8", "--nsamples", "4", "-o", dir["direct"]));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir["direct"], "model.safetensors")), File.ReadAllBytes(Out("realign/model.safetensors")));

        Assert.All(Outcomes(Ok(CliRunner.Run("run", recipe)).Err).Values, v => Assert.Equal("skipped", v));
        // A rerun of a convert step replaces its own output.
        Assert.Contains("--overwrite", Ok(CliRunner.Run("run", recipe, "--force", "convert-2")).Err);
    }

    [Theory]
    [InlineData("      sparsty: 0.5\n", 12, "realign: unknown option 'sparsty' (did you mean 'sparsity'?)")]
    [InlineData("      sparsity: lots\n", 12, "realign: sparsity must be a number, not 'lots'")]
    [InlineData("      dry-run: maybe\n", 12, "realign: dry-run is a flag: true or false")]
    [InlineData("      o: x\n      output: y\n", 13, "realign: output is given twice")]
    [InlineData("      modules: [q_proj, v_proj]\n", 12, "not valid YAML: Duplicate key modules")]
    [InlineData("     data: b\n", 12, "not valid YAML")]
    [InlineData("  - realine: {base: aligned}\n", 12, "unknown command 'realine' (a step is one of: safety-vector, fisher, realign")]
    [InlineData("  - eval task: {data: missing.jsonl, metric: exact}\n", 12, "eval task: data ", "missing.jsonl: no such file or directory, and no step writes it")]
    [InlineData("  - eval task: {data: task.jsonl}\n", 12, "eval task: metric is required")]
    [InlineData("  - safety-vector: {aligned: aligned, unaligned: unaligned, unaligned-adapter: unaligned}\n", 12, "safety-vector: give exactly one of unaligned and unaligned-adapter")]
    [InlineData("  - safety-vector: {aligned: aligned, unaligned: unaligned, modules: bogus}\n", 12, "safety-vector: ", "bogus")]
    [InlineData("  - report: {title: [a, b]}\n", 12, "report: title takes one value, not a list")]
    [InlineData("  - eval task: {data: task.jsonl, metric: exact, engine-serve: \"sh -c evil {model} {port}\"}\n", 12, "eval task: engine-serve runs a command, and irr never runs a command read from a file")]
    [InlineData("  - generate: {prompts: harmful.json, engine-serve-adapter: \"sh -c evil {model} {adapter} {port}\"}\n", 12, "generate: engine-serve-adapter runs a command, and irr never runs a command read from a file")]
    [InlineData("  - eval safety: {prompts: [harmful.json], engine-serve: \"sh -c evil {model} {port}\"}\n", 12, "eval safety: engine-serve runs a command, and irr never runs a command read from a file")]
    [InlineData("  - sweep: {list-points: true}\n", 12, "sweep: list-points prints the sweep's units instead of running it; run irr sweep ... --list-points on the command line")]
    [InlineData("  - eval task: {data: task.jsonl, metric: exact\n  - report: {}\n", 12, "not valid YAML")]
    public void ABadRecipeIsOneLineWithItsLineNumberAndWritesNothing(string appended, int line, params string[] expected)
    {
        using var dir = new TempDir();
        string recipe = Setup(dir, Pipeline[..Pipeline.IndexOf("  - eval safety", StringComparison.Ordinal)] + appended);
        AssertRecipeError(dir, recipe, line, expected);
    }

    [Theory]
    [InlineData("  - realign: {base: aligned, finetuned: finetuned, safety-vector: sv.safetensors, calibration: task.jsonl}\n", 3,
        "realign: missing input 'fisher': give it, or add an earlier step that writes it (fisher)")]
    [InlineData("  - eval safety: {prompts: [harmful.json]}\n", 3, "eval safety: missing input 'model': give it, or add an earlier step that writes it (realign or sweep or train with full or baseline resta or baseline antidote or baseline interpolate)")]
    [InlineData("  - report: {}\n", 3, "report: missing input 'runs': give it, or add an earlier step that writes it (eval safety or eval task)")]
    // safety-vector reads realign's output, and realign reads the safety vector: a cycle.
    [InlineData("  - fisher: {model: aligned, data: safety.jsonl}\n  - safety-vector: {aligned: out/realign, unaligned: unaligned}\n" +
        "  - realign: {base: aligned, finetuned: finetuned, calibration: task.jsonl}\n", 4,
        "safety-vector: aligned ", "is written by realign (line 5), a later step that depends on this one (cycle: safety-vector → realign → safety-vector)")]
    [InlineData("  - fisher: {model: aligned, data: safety.jsonl, output: f.safetensors}\n  - fisher: {model: aligned, data: f.safetensors, output: f.safetensors}\n", 4,
        "fisher: the output ", "is also the output of fisher (line 3)")]
    [InlineData("  - fisher: {model: aligned, data: out/fisher.safetensors}\n", 3, "fisher: data ", "fisher.safetensors is this step's own output (a cycle)")]
    [InlineData("  - convert: {input: missing.pt}\n", 3, "convert: input ", "missing.pt: no such file or directory, and no step writes it")]
    [InlineData("  - convert: {input: [safety.jsonl, task.jsonl]}\n", 3, "convert: input takes one value, not a list")]
    [InlineData("  - fisher:\n      model: aligned\n     data: safety.jsonl\n", 5, "not valid YAML")]
    // Issue 25: the wiring between steps is checked too: realign's default modules (all seven) against the steps that compute its inputs.
    [InlineData("  - safety-vector: {aligned: aligned, unaligned: unaligned, modules: \"q_proj,v_proj\"}\n  - fisher: {model: aligned, data: safety.jsonl, modules: \"q_proj,v_proj\"}\n" +
        "  - realign: {base: aligned, finetuned: finetuned, calibration: task.jsonl}\n", 5,
        "realign: realigns modules q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (its default), but step safety-vector (line 3) computes its safety-vector for q_proj,v_proj only, without k_proj,o_proj,gate_proj,up_proj,down_proj, " +
        "and step fisher (line 4) computes its fisher for q_proj,v_proj only, without k_proj,o_proj,gate_proj,up_proj,down_proj; give the same modules to every step")]
    [InlineData("  - safety-vector: {aligned: aligned, unaligned: unaligned}\n  - fisher: {model: aligned, data: safety.jsonl, modules: \"q_proj,v_proj\"}\n" +
        "  - realign:\n      base: aligned\n      finetuned: finetuned\n      calibration: task.jsonl\n      modules: \"q_proj,k_proj\"\n", 9,
        "realign: realigns modules q_proj,k_proj, but step fisher (line 4) computes its fisher for q_proj,v_proj only, without k_proj; give the same modules to both steps")]
    [InlineData("  - fisher: {model: aligned, data: safety.jsonl}\nextra: 1\n", 4, "unknown key 'extra' (a recipe has output and steps)")]
    public void StepGraphErrorsAreOneLineWithTheLineNumber(string steps, int line, params string[] expected)
    {
        using var dir = new TempDir();
        string recipe = Setup(dir, "output: out\nsteps:\n" + steps);
        AssertRecipeError(dir, recipe, line, expected);
    }

    [Fact]
    public void TheRecipeInDocsRecipesMdIsValidAndWiredAsDocumented()
    {
        using var dir = new TempDir();
        string doc = File.ReadAllText(Path.Combine(Irr.Tests.Text.Fixtures.RepoRoot, "docs", "RECIPES.md"));
        int start = doc.IndexOf("```yaml\n", StringComparison.Ordinal) + 8;
        File.WriteAllText(dir["code-irr.yaml"], doc[start..doc.IndexOf("```", start, StringComparison.Ordinal)]);
        foreach (string model in new[] { "models/llama-2-7b-chat", "adapters/unaligned-lora", "adapters/code-lora" }) Directory.CreateDirectory(dir[model]);
        Directory.CreateDirectory(dir["data"]);
        foreach (string data in new[] { "refusals.jsonl", "code_train.json", "catqa_english.json", "harmful_behaviors.csv", "code_test.json" }) File.WriteAllText(dir["data/" + data], "");

        var steps = Irr.Cli.RunCommand.Check(Recipe.Load(dir["code-irr.yaml"]));
        Assert.Equal(["safety-vector", "fisher", "realign", "eval-safety", "eval-task", "eval-safety-2", "eval-task-2", "report"], steps.Select(s => s.Planned.Id));
        string run = dir["runs/code-irr"];
        Assert.Equal(["realign", "--base", dir["models/llama-2-7b-chat"], "--adapter", dir["adapters/code-lora"], "--calibration", dir["data/code_train.json"],
            "--nsamples", "128", "--seqlen", "512", "--output", Path.Combine(run, "realign"),
            "--safety-vector", Path.Combine(run, "safety-vector.safetensors"), "--fisher", Path.Combine(run, "fisher.safetensors")], steps[2].Arguments);
        Assert.Equal(["eval", "safety", "--prompts", dir["data/catqa_english.json"], "--prompts", dir["data/harmful_behaviors.csv"],
            "--attack", "none", "--attack", "prefill", "--attack", "refusal-suppression",
            "--output", Path.Combine(run, "irr"), "--model", Path.Combine(run, "realign")], steps[3].Arguments);
        Assert.Equal(["report", "--title", "IRR on a code LoRA", "--output", Path.Combine(run, "report"), "--", Path.Combine(run, "irr"), Path.Combine(run, "finetuned")],
            steps[7].Arguments);
        Assert.Equal(128, (int)steps[2].Options["nsamples"]!);
        Assert.Equal("irr", (string)steps[2].Options["method"]!);
    }

    [Fact]
    public void AnExistingOutputAStepWouldRefuseIsRefusedBeforeAnyStepRuns()
    {
        using var dir = new TempDir();
        string recipe = Setup(dir, """
            output: out
            steps:
              - safety-vector: {aligned: aligned, unaligned: unaligned, modules: "q_proj,v_proj"}
              - fisher:
                  model: aligned
                  data: safety.jsonl
                  modules: "q_proj,v_proj"
                  output: f.safetensors
            """);
        File.WriteAllText(dir["f.safetensors"], "someone else's file");
        AssertRecipeError(dir, recipe, 8, [$"fisher: the output {dir["f.safetensors"]} exists and is not this step's earlier output (choose another output, or give overwrite: true to replace it)"]);
        Assert.Equal("someone else's file", File.ReadAllText(dir["f.safetensors"]));
        // Said in the step, it is replaced.
        File.WriteAllText(recipe, File.ReadAllText(recipe).Replace("output: f.safetensors", "output: f.safetensors\n      overwrite: true"));
        var (code, _, err) = CliRunner.Run("run", recipe);
        Assert.True(code == 0, err);
        Assert.NotEqual("someone else's file", File.ReadAllText(dir["f.safetensors"]));
    }

    private static void AssertRecipeError(TempDir dir, string recipe, int line, string[] expected)
    {
        var (code, output, err) = CliRunner.Run("run", recipe);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var lines = err.TrimEnd('\n').Split('\n');
        Assert.True(lines.Length == 1, err);
        Assert.StartsWith($"error: {recipe} line {line}: ", lines[0]);
        foreach (string part in expected) Assert.Contains(part, lines[0]);
        Assert.False(Directory.Exists(dir["out"]), "nothing is written");
    }
}
