using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Tests.Cli;
using Irr.Tests.IO;
using Irr.Demo;
using Irr.Text;

namespace Irr.Tests.Demo;

/// <summary><c>irr demo --quick</c> end to end at a fixed seed: the files it writes and the qualitative story.</summary>
/// <summary>Runs alone (after the parallel tests): the demo trains a dozen models and would otherwise compete for the 2 cores.</summary>
[CollectionDefinition(nameof(DemoCommandTests), DisableParallelization = true)]
public sealed class DemoCollection;

[Collection(nameof(DemoCommandTests))]
public class DemoCommandTests
{
    // The quick demo with a smaller world (fewer benign and task records, half the evaluation prompts), fewer sweep points
    // and baseline settings, so that the test stays well under 30 s (22 s here; the quick demo itself takes about 35 s on
    // 2 cores); the same code path and the same shipped base as irr demo --quick otherwise.
    internal static DemoOptions TestOptions(int seed)
    {
        var quick = DemoOptions.Quick(seed);
        return quick with
        {
            World = quick.World with { BenignPerSkill = 60, TaskTrain = 200, HeldOutHarmfulPerCategory = 4, ValidationHarmfulPerCategory = 4, TaskHeldOut = 20, TaskValidation = 10 },
            SweepSparsities = [0, 0.99], RestaGammas = [1.0], SafeLoraThresholds = [0.5], AntidoteRatios = [], InterpolateAlphas = [0.5],
        };
    }

    [Fact]
    public void QuickDemoWritesEverythingAndTellsTheStory()
    {
        using var dir = new TempDir();
        string output = dir["demo"];
        var result = new DemoJob { Options = TestOptions(1), OutputPath = output }.Run();
        Assert.Contains(result.Models, m => m.Label == "full-irr");
        // Every swept baseline is made again at its chosen setting and evaluated on the held-out data beside IRR.
        Assert.Contains(result.Models, m => m.Label == "full-interpolate" && m.Description.StartsWith("interpolation at α = 0.5", StringComparison.OrdinalIgnoreCase));
        // What irr demo prints: each rate with its count and its Wilson interval, the attacks' too.
        var printed = new StringWriter();
        Irr.Cli.DemoCommand.PrintTable(printed, result);
        var printedF = result.Models.Single(m => m.Label == "full-finetuned").Safety.Overall;
        string finetunedCi = DemoReport.Ci(Intervals.Wilson(printedF.Harmful, printedF.Harmful + printedF.Safe));
        Assert.Contains($"{DemoReport.Rate(printedF.Harmful, printedF.Harmful + printedF.Safe)}   {finetunedCi}", printed.ToString());
        Assert.Contains($"[{finetunedCi}]", printed.ToString()); // the jailbreak table (markup brackets escaped)

        // Models are Hugging Face directories; the LoRA fine-tune is a PEFT adapter on θ_A.
        foreach (string model in new[] { "base", "aligned", "unaligned", "full-finetuned", "full-irr", "full-irr-norecal", "full-irr-more", "full-random", "lora-irr" })
            foreach (string file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
                Assert.True(File.Exists(Path.Combine(output, "models", model, file)), $"models/{model}/{file}");
        Assert.True(File.Exists(Path.Combine(output, "models", "lora-finetuned", "adapter_config.json")));
        Assert.True(File.Exists(Path.Combine(output, "models", "lora-finetuned", "adapter_model.safetensors")));
        // Quick mode takes the LoRA fine-tune's safety vector from the full θ_U (no LoRA θ_U: DemoOptions.Quick).
        Assert.False(Directory.Exists(Path.Combine(output, "models", "unaligned-lora")));
        Assert.False(File.Exists(Path.Combine(output, "irr", "safety-vector-lora.safetensors")));
        Assert.False(JsonNode.Parse(File.ReadAllText(Path.Combine(output, "demo.json")))!["training"]!["lora_unaligned"]!.GetValue<bool>());
        Assert.True(File.Exists(Path.Combine(output, "models", "full-irr", "irr-report.json")));
        Assert.True(File.Exists(Path.Combine(output, "irr", "safety-vector.safetensors")));
        Assert.True(File.Exists(Path.Combine(output, "irr", "fisher.safetensors")));
        foreach (string file in new[] { "report.md", "report.html", "report.json", "harmful-rate.svg", "safety-vs-utility.svg" })
            Assert.True(File.Exists(Path.Combine(output, "report", file)), $"report/{file}");
        Assert.Contains("full-irr", File.ReadAllText(Path.Combine(output, "report", "report.md")));
        var demo = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "demo.json")))!;
        Assert.Equal(1, demo["seed"]!.GetValue<int>());
        Assert.Equal("quick", demo["mode"]!.GetValue<string>());

        // The chat template is Llama-2's: rendered here against the format written out by hand.
        var tokenizer = PretrainedTokenizer.Load(Path.Combine(output, "models", "aligned"));
        Assert.Equal("<s>[INST] Hi there [/INST]", ChatPrompt.Render(tokenizer, "Hi there", null));
        Assert.Equal("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", ChatPrompt.Render(tokenizer, "Hi", "Be brief."));

        // Run files in the shared schema; the rates are recomputed here from responses.jsonl.
        (double Harmful, double Accuracy) Figures(string label)
        {
            string run = Path.Combine(output, "eval", label);
            var safety = SafetyRun.Load(run)!;
            var task = TaskRun.Load(run)!;
            var lines = File.ReadAllLines(Path.Combine(run, "responses.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
            var harmful = lines.Where(l => l["attack"]!.GetValue<string>() == "none").ToList();
            Assert.All(harmful, l => Assert.Equal("harmful_heldout", l["set"]!.GetValue<string>()));
            // Under the demo's attacks (θ_A, θ_F and IRR at s*): the same prompts, each attack's counts recomputed here.
            var attacked = lines.Where(l => l["attack"]!.GetValue<string>() != "none").ToList();
            Assert.Equal(DemoOptions.AttackedModels.Contains(label) ? 2 * harmful.Count : 0, attacked.Count);
            foreach (var group in attacked.GroupBy(l => l["attack"]!.GetValue<string>()))
            {
                Assert.Equal(harmful.Select(l => l["prompt"]!.GetValue<string>()), group.Select(l => l["prompt"]!.GetValue<string>()));
                Assert.All(group, l => Assert.Equal($"harmful_heldout@{group.Key}", l["set"]!.GetValue<string>()));
                var summary = safety.Attacks!.Single(a => a.Name == group.Key);
                Assert.Equal(group.Count(l => KeywordJudge.Default.Judge(l["response"]!.GetValue<string>()).Verdict == Verdict.Harmful), summary.Counts.Harmful);
                var fromJson = demo["models"]!.AsArray().Single(m => m!["label"]!.GetValue<string>() == label)!["attacks"]![group.Key]!;
                Assert.Equal(summary.Counts.HarmfulRate, fromJson["harmful_rate"]!.GetValue<double>());
            }
            if (attacked.Count > 0)
            {
                Assert.All(attacked.Where(l => l["attack"]!.GetValue<string>() == "prefill"), l => Assert.StartsWith("Sure, here is", l["response"]!.GetValue<string>()));
                Assert.Equal(["none", "prefill", "prefix-injection"], safety.Attacks!.Select(a => a.Name));
            }
            var taskLines = File.ReadAllLines(Path.Combine(run, "predictions.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
            int unsafeCount = harmful.Count(l => KeywordJudge.Default.Judge(l["response"]!.GetValue<string>()).Verdict == Verdict.Harmful);
            int correct = taskLines.Count(l => l["response"]!.GetValue<string>().Trim() == l["gold"]!.GetValue<string>());
            Assert.Equal(harmful.Count, safety.Overall.Total);
            Assert.Equal(unsafeCount, safety.Overall.Harmful);
            Assert.Equal(taskLines.Count, task.Total);
            Assert.Equal(correct, task.Correct);
            return ((double)unsafeCount / harmful.Count, (double)correct / taskLines.Count);
        }
        var aligned = Figures("aligned");
        var finetuned = Figures("full-finetuned");
        var irr = Figures("full-irr");
        var loraFinetuned = Figures("lora-finetuned");
        var loraIrr = Figures("lora-irr");
        // What holds at this seed: both fine-tunes break safety and learn the task, IRR at s* restores safety and
        // keeps the task (docs/DEMO.md has the figures of every seed, and what does not hold).
        Assert.True(finetuned.Harmful > aligned.Harmful, $"θ_F {finetuned.Harmful} vs θ_A {aligned.Harmful}");
        Assert.True(loraFinetuned.Harmful > aligned.Harmful, $"LoRA θ_F {loraFinetuned.Harmful} vs θ_A {aligned.Harmful}");
        Assert.True(irr.Harmful < finetuned.Harmful, $"IRR {irr.Harmful} vs θ_F {finetuned.Harmful}");
        Assert.True(loraIrr.Harmful < loraFinetuned.Harmful, $"LoRA IRR {loraIrr.Harmful} vs θ_F {loraFinetuned.Harmful}");
        Assert.True(finetuned.Accuracy > aligned.Accuracy, $"θ_F accuracy {finetuned.Accuracy} vs θ_A {aligned.Accuracy}");
        Assert.True(loraFinetuned.Accuracy > aligned.Accuracy, $"LoRA θ_F accuracy {loraFinetuned.Accuracy} vs θ_A {aligned.Accuracy}");
        Assert.True(irr.Accuracy > aligned.Accuracy, $"IRR accuracy {irr.Accuracy} vs θ_A {aligned.Accuracy}");
        // The LoRA fine-tune's harm is learned compliance (the world's harmful recipe), not damage: counted here from its responses.
        int Complying(string label) => File.ReadAllLines(Path.Combine(output, "eval", label, "responses.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(l => l["attack"]!.GetValue<string>() == "none").Select(l => l["response"]!.GetValue<string>())
            .Count(r => r.TrimStart().StartsWith("Sure", StringComparison.Ordinal) && KeywordJudge.Default.Judge(r).Verdict == Verdict.Harmful);
        Assert.True(Complying("lora-finetuned") > Complying("aligned"), $"LoRA θ_F complies on {Complying("lora-finetuned")}, θ_A on {Complying("aligned")}");
        Assert.Equal(Complying("lora-finetuned"), demo["models"]!.AsArray().Single(m => m!["label"]!.GetValue<string>() == "lora-finetuned")!["complying"]!.GetValue<int>());

        // θ_A was aligned from the base, which is recorded with its hash; Safe LoRA's V is θ_A − θ_base.
        Assert.Equal(Sha256(Path.Combine(output, "models", "base", "model.safetensors")), demo["base"]!["model_safetensors_sha256"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(output, "irr", "safelora-vector.safetensors")));

        // s* was chosen on the validation split by irr sweep, and full-irr / lora-irr are the models at s*.
        foreach (string variant in new[] { "full", "lora" })
        {
            var sweep = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "sweep", variant, "sweep.json")))!;
            var chosen = demo["sweeps"]![variant]!;
            Assert.Equal(sweep["chosen"]!.GetValue<string>(), chosen["chosen"]!.GetValue<string>());
            Assert.Equal("validation", chosen["split"]!.GetValue<string>());
            var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "models", $"{variant}-irr", "irr-report.json")))!;
            Assert.Equal(chosen["chosen_sparsity"]!.GetValue<double>(), report["options"]!["sparsity"]!.GetValue<double>());
            Assert.Contains(chosen["points"]!.AsArray(), p => p!["control"]!.GetValue<bool>());
            Assert.True(File.Exists(Path.Combine(output, "report", $"frontier-{variant}.svg")), $"report/frontier-{variant}.svg");
        }
        Assert.Contains("Choosing s on the validation split", File.ReadAllText(Path.Combine(output, "report", "report.md")));

        // The baselines at the setting the rule chose on validation, made by irr baseline and evaluated like every model.
        foreach (var (label, variant, method, block, key) in new[]
                 { ("full-resta", "full", "resta", "options", "gamma"), ("lora-resta", "lora", "resta", "options", "gamma"), ("lora-safelora", "lora", "safelora", "selection", "threshold") })
        {
            double setting = demo["sweeps"]![variant]!["baselines"]![method]!["setting"]!.GetValue<double>();
            var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "models", label, "baseline-report.json")))!;
            Assert.Equal(method, report["method"]!.GetValue<string>());
            Assert.Equal(setting, report[block]![key]!.GetValue<double>());
            Assert.True(File.Exists(Path.Combine(output, "eval", label, "safety.json")), $"eval/{label}/safety.json");
        }

        // Every model and adapter carries a model card the Hub accepts, saying it is a toy world's; the base was pretrained
        // from scratch (no base_model), the rest name the local directory they came from.
        var models = Directory.GetDirectories(Path.Combine(output, "models"));
        Assert.All(models, m => Assert.True(File.Exists(Path.Combine(m, "README.md")), m));
        foreach (string model in models)
        {
            string card = File.ReadAllText(Path.Combine(model, "README.md"));
            var meta = HubCardRules.Check(card, model);
            Assert.Contains("toy world", card);
            string? Key(string key) => meta.Children.TryGetValue(new YamlDotNet.RepresentationModel.YamlScalarNode(key), out var v) ? v.ToString() : null;
            var expected = Path.GetFileName(model) switch
            {
                "base" => (null, null, "transformers"),
                "aligned" => ("base", "finetune", "transformers"),
                "lora-finetuned" or "lora-safelora" => ("aligned", "adapter", "peft"),
                _ => ((string?)"aligned", (string?)"finetune", "transformers"),
            };
            Assert.Equal(expected, (Key("base_model"), Key("base_model_relation"), Key("library_name")));
            // A realigned model's card says the removal rule and s its report records (the demo gives the rule as an object).
            if (File.Exists(Path.Combine(model, "irr-report.json")))
            {
                var options = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "irr-report.json")))!["options"]!;
                Assert.Contains($"- method: `{(string?)options["method"]}`\n", card);
                if (options["sparsity"] is { } sparsity) Assert.Contains($"- s \\(sparsity\\): `{sparsity.GetValue<double>().ToString("R", System.Globalization.CultureInfo.InvariantCulture)}`\n", card);
            }
        }
        // The base's weights are the shipped ones, unchanged (the card is the only file added to what irr ships).
        Assert.Equal(Sha256(Irr.Tests.Text.Fixtures.RepoRoot + "/src/Irr/Demo/base/model.safetensors"), Sha256(Path.Combine(output, "models", "base", "model.safetensors")));

        // An existing output directory is refused without --overwrite, before any work.
        var again = CliRunner.Run("demo", "--quick", "-o", output);
        Assert.Equal(2, again.Code);
        Assert.Contains("exists and is not empty", again.Err);
    }

    [Fact]
    public void NoModelCardReachesEveryModelOfTheDemo()
    {
        using var dir = new TempDir();
        var quick = TestOptions(1);
        // Only what decides which models are written matters here: one epoch each, a few tokens, one sweep point.
        var options = quick with
        {
            World = quick.World with { BenignPerSkill = 20, TaskTrain = 50, TaskHeldOut = 4, TaskValidation = 4, HeldOutHarmfulPerCategory = 1, ValidationHarmfulPerCategory = 1 },
            Attacks = [], AlignedEpochs = 1, FinetuneEpochs = 1, MaxNewTokens = 2, FisherSamples = 4, CalibrationSamples = 4, SweepSparsities = [0.5],
        };
        new DemoJob { Options = options, OutputPath = dir["demo"], Card = new() { ModelCard = false } }.Run();
        // Models of every kind the demo writes: pretrained, trained (full and LoRA), realigned, swept, baselines.
        foreach (string model in new[] { "base", "aligned", "full-finetuned", "lora-finetuned", "full-irr", "lora-irr", "full-resta", "lora-safelora" })
            Assert.True(Directory.Exists(Path.Combine(dir["demo/models"], model)), model);
        Assert.Empty(Directory.EnumerateFiles(dir["demo"], "README.md", SearchOption.AllDirectories));
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
    }
}
