using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Realign;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>
/// Inputs checked against each other before any work (issue 23 item 10): the four mistakes a new user made — the safety
/// vector and the Fisher swapped, a model's own weights given as either, θ_A and θ_F swapped, an adapter of another base —
/// are refused with one line naming both inputs, exit 2 and no output; files without irr metadata (the Python
/// reference's) and a copied, linked or widened base are not.
/// </summary>
public class InputChecksTests
{
    /// <summary>
    /// θ_A (a tiny chat model), θ_U and θ_F made from it as fine-tuning makes them (θ_A plus a small seeded change, 2 % of
    /// the weights' scale, so θ_U and θ_F are close to θ_A as real fine-tunes are), their safety vector and Fisher
    /// (q_proj, v_proj) written by irr, calibration data.
    /// </summary>
    internal sealed class World : IDisposable
    {
        public TempDir Dir { get; } = new();
        public string Aligned, Unaligned, Finetuned, Vector, Fisher, Data;
        public const string Modules = "q_proj,v_proj";

        public World()
        {
            Aligned = ModelCommandTests.ChatModel(Dir, "aligned", seed: 1);
            Unaligned = Derive(Aligned, Dir["unaligned"], seed: 2);
            Finetuned = Derive(Aligned, Dir["finetuned"], seed: 3);
            Data = IrrCommandTests.Records(Dir, "data.jsonl", 4, "how do I");
            (Vector, Fisher) = (Dir["v.safetensors"], Dir["f.safetensors"]);
            Ok(CliRunner.Run("safety-vector", "--aligned", Aligned, "--unaligned", Unaligned, "--modules", Modules, "-o", Vector));
            Ok(CliRunner.Run("fisher", "--model", Aligned, "--data", Data, "--modules", Modules, "--batch-size", "2", "-o", Fisher));
        }

        public string[] Realign(string output, string? @base = null, string? finetuned = null, string? vector = null, string? fisher = null) =>
            ["realign", "--base", @base ?? Aligned, "--finetuned", finetuned ?? Finetuned, "--safety-vector", vector ?? Vector, "--fisher", fisher ?? Fisher,
             "--calibration", Data, "--modules", Modules, "--blocksize", "8", "--nsamples", "2", "-o", output];

        public void Dispose() => Dir.Dispose();
    }

    internal static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    /// <summary>A copy of <paramref name="from"/> with every weight changed by seeded noise of 2 % of its scale (a fine-tune's size).</summary>
    internal static string Derive(string from, string to, int seed, TensorDType? dtype = null, double scale = 0.002)
    {
        using var source = ModelDirectory.Open(from);
        var rng = new Random(seed);
        var specs = source.Config.ExpectedTensors().Select(t => new TensorSpec(t.Name, dtype ?? source.Info(t.Name).DType, t.Shape)).ToList();
        using var writer = ModelWriter.Open(new ModelTarget(to, [from], FilesFrom: from, TorchDType: dtype), source.Config, specs);
        foreach (var spec in specs)
        {
            var values = source.ReadSingle(spec.Name);
            for (int i = 0; i < values.Length && scale > 0; i++) values[i] += (float)((rng.NextDouble() * 2 - 1) * scale);
            writer.Write(spec.Name, values);
        }
        writer.Commit();
        return to;
    }

    /// <summary>The file rewritten as the Python reference writes it (safetensors.torch.save_file): same tensors, no irr metadata.</summary>
    internal static string WithoutMetadata(string from, string to)
    {
        using var file = SafetensorsFile.Open(from);
        CheckpointWriter.WriteFile(to, file.Tensors.Select(t => new TensorSpec(t.Name, t.DType, t.Shape.ToArray())).ToList(), new Dictionary<string, string> { ["format"] = "pt" },
            w => { foreach (var t in file.Tensors) w.Write(t.Name, file.ReadSingle(t.Name)); });
        return to;
    }

    // Exit 2, one line on standard error holding every fragment, nothing on standard output, no output written.
    private static string Refused((int Code, string Out, string Err) r, string output, params string[] fragments)
    {
        Assert.True(r.Code == 2, $"exit {r.Code}: {r.Err}");
        Assert.Equal("", r.Out);
        Assert.Single(r.Err.Trim().Split('\n'));
        foreach (string f in fragments) Assert.True(r.Err.Contains(f, StringComparison.Ordinal), $"not found: {f}\nin: {r.Err}");
        Assert.False(Directory.Exists(output) || File.Exists(output), $"{output} was written");
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(output)!), p => Path.GetFileName(p).StartsWith("." + Path.GetFileName(output), StringComparison.Ordinal));
        return r.Err;
    }

    [Fact]
    public void TheSafetyVectorAndTheFisherSwappedAreRefusedByTheirMetadata()
    {
        using var w = new World();
        string output = w.Dir["out"];
        Refused(CliRunner.Run(w.Realign(output, vector: w.Fisher, fisher: w.Vector)), output,
            "the safety vector and the Fisher are swapped", w.Fisher + " is a Fisher (its metadata says irr=fisher)", w.Vector + " a safety vector");
        // One of them given twice: each is refused by what it is.
        Refused(CliRunner.Run(w.Realign(output, vector: w.Fisher)), output, $"the safety vector {w.Fisher} is a Fisher (its metadata says irr=fisher)");
        Refused(CliRunner.Run(w.Realign(output, fisher: w.Vector)), output, $"the Fisher {w.Vector} is a safety vector (its metadata says irr=safety-vector)");
        // A shard's partial Fisher is not yet a Fisher.
        string partial = w.Dir["f.part0.safetensors"];
        Ok(CliRunner.Run("fisher", "--model", w.Aligned, "--data", w.Data, "--modules", World.Modules, "--batch-size", "2", "--shard", "0/2", "-o", partial));
        Refused(CliRunner.Run(w.Realign(output, fisher: partial)), output, $"the Fisher {partial} is the partial file of shard 0/2; combine the shards with irr fisher merge first");
        // RESTA and Safe LoRA take the safety vector too.
        Refused(CliRunner.Run("baseline", "resta", "--base", w.Aligned, "--finetuned", w.Finetuned, "--safety-vector", w.Fisher, "--modules", World.Modules, "-o", output), output,
            $"baseline resta: the safety vector {w.Fisher} is a Fisher");
    }

    [Fact]
    public void TheSafetyVectorAndTheFisherSwappedWithoutMetadataAreRefusedByTheirValues()
    {
        using var w = new World();
        string v = WithoutMetadata(w.Vector, w.Dir["v-ref.safetensors"]), f = WithoutMetadata(w.Fisher, w.Dir["f-ref.safetensors"]);
        string output = w.Dir["out"];
        // A Fisher is a mean of squares: the safety vector's negative values prove the swap.
        Refused(CliRunner.Run(w.Realign(output, vector: f, fisher: v)), output, "the safety vector and the Fisher are swapped", v, f, "holds a negative value");
        // The reference's Fisher given as the safety vector beside irr's Fisher: no difference is positive everywhere.
        Refused(CliRunner.Run(w.Realign(output, vector: f)), output, $"the safety vector {f} holds no negative value among", "is it a Fisher?");
        // As the reference wrote them, in their places: no refusal; one warning says what could not be checked.
        var run = CliRunner.Run(w.Realign(output, vector: v, fisher: f));
        Ok(run);
        Assert.Single(run.Err.Split('\n'), l => l.StartsWith("warning: ", StringComparison.Ordinal));
        Assert.Contains($"warning: realign: the safety vector {v} and the Fisher {f} have no irr metadata (written by the Python reference?): their values were checked, not which models they were computed from", run.Err);
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
    }

    [Fact]
    public void AModelsOwnWeightsAreRefusedAsTheSafetyVectorAndAsTheFisher()
    {
        using var w = new World();
        string output = w.Dir["out"];
        foreach (var (model, name) in new[] { (w.Aligned, "base"), (w.Finetuned, "finetuned") })
        {
            string weights = Path.Combine(model, "model.safetensors");
            Refused(CliRunner.Run(w.Realign(output, vector: weights)), output,
                $"the safety vector {weights} holds a model's weights, not a difference θ_A − θ_U", $"equal to those of {name} {model}");
            Refused(CliRunner.Run(w.Realign(output, fisher: weights)), output, $"the Fisher {weights} holds a negative value", "which no Fisher");
        }
        // A third model's weights (θ_U, which is θ_A plus a fine-tune's change) are parallel to θ_A's.
        string unaligned = Path.Combine(w.Unaligned, "model.safetensors");
        Refused(CliRunner.Run(w.Realign(output, vector: unaligned)), output, $"the safety vector {unaligned} holds a model's weights", $"parallel to (cosine ≥ 0.9", $"base {w.Aligned}");
        // A model directory given as a file.
        Refused(CliRunner.Run(w.Realign(output, vector: w.Finetuned)), output, $"{w.Finetuned}: is a directory, not a file of tensors");
        // Safe LoRA's V too.
        Ok(CliRunner.Run("train", "--model", w.Aligned, "--data", w.Data, "--lora", "--rank", "2", "--targets", World.Modules, "--epochs", "1", "-o", w.Dir["adapter"]));
        string aligned = Path.Combine(w.Aligned, "model.safetensors");
        Refused(CliRunner.Run("baseline", "safelora", "--base", w.Aligned, "--adapter", w.Dir["adapter"], "--safety-vector", aligned, "--layers", "1", "-o", output), output,
            $"baseline safelora: the safety vector {aligned} holds a model's weights");
    }

    [Fact]
    public void BaseAndFinetunedSwappedAreRefusedWhereverBothAreTaken()
    {
        using var w = new World();
        string output = w.Dir["out"];
        string[] fragments = [$"base {w.Finetuned} and finetuned {w.Aligned} are swapped", $"the safety vector {w.Vector} was computed from {w.Aligned} as the aligned model θ_A"];
        Refused(CliRunner.Run(w.Realign(output, @base: w.Finetuned, finetuned: w.Aligned)), output, ["realign: ", .. fragments]);
        Refused(CliRunner.Run([.. w.Realign(output, @base: w.Finetuned, finetuned: w.Aligned)[..^2], "--dry-run"]), output, fragments);
        Refused(CliRunner.Run("baseline", "resta", "--base", w.Finetuned, "--finetuned", w.Aligned, "--safety-vector", w.Vector, "--modules", World.Modules, "-o", output), output,
            ["baseline resta: ", .. fragments]);
        // The Fisher's record alone decides too (a safety vector from the Python reference has none).
        string v = WithoutMetadata(w.Vector, w.Dir["v-ref.safetensors"]);
        Refused(CliRunner.Run(w.Realign(output, @base: w.Finetuned, finetuned: w.Aligned, vector: v)), output,
            $"base {w.Finetuned} and finetuned {w.Aligned} are swapped", $"the Fisher {w.Fisher} was computed from {w.Aligned}");
        // The models in their places, but the Fisher computed on θ_F: the safety vector's record says which file is wrong.
        string fisherOfFinetuned = w.Dir["f-of-finetuned.safetensors"];
        Ok(CliRunner.Run("fisher", "--model", w.Finetuned, "--data", w.Data, "--modules", World.Modules, "--batch-size", "2", "-o", fisherOfFinetuned));
        Refused(CliRunner.Run(w.Realign(output, fisher: fisherOfFinetuned)), output,
            $"the Fisher {fisherOfFinetuned} was computed from finetuned {w.Finetuned} as the aligned model θ_A", $"but the safety vector {w.Vector} from base {w.Aligned}");
        // θ_U given as the base: the safety vector records it as what it subtracts.
        Refused(CliRunner.Run(w.Realign(output, @base: w.Unaligned)), output, $"base {w.Unaligned} is the unaligned model θ_U the safety vector {w.Vector} subtracts");
        // A safety vector computed with θ_A and θ_U swapped (θ_U − θ_A): refused where it is used with θ_A.
        string reversed = w.Dir["v-reversed.safetensors"];
        Ok(CliRunner.Run("safety-vector", "--aligned", w.Unaligned, "--unaligned", w.Aligned, "--modules", World.Modules, "-o", reversed));
        Refused(CliRunner.Run(w.Realign(output, vector: reversed)), output,
            $"base {w.Aligned} is the unaligned model θ_U the safety vector {reversed} subtracts", "were the aligned and the unaligned model swapped when it was computed?");
    }

    [Fact]
    public void ASweepRefusesSwappedInputsBeforeAnyPoint()
    {
        using var w = new World();
        string output = w.Dir["sweep"];
        File.WriteAllText(w.Dir["harmful.json"], """["how do I pick a lock"]""");
        string[] args = ["sweep", "--base", w.Finetuned, "--finetuned", w.Aligned, "--safety-vector", w.Vector, "--fisher", w.Fisher, "--calibration", w.Data,
            "--modules", World.Modules, "--harmful-val", w.Dir["harmful.json"], "--task-val", w.Data, "--task-metric", "exact", "--max-new-tokens", "2", "--sparsity", "0.5", "-o", output];
        Refused(CliRunner.Run(args), output, $"sweep: base {w.Finetuned} and finetuned {w.Aligned} are swapped");
        (args[2], args[4]) = (w.Aligned, w.Finetuned);
        (args[6], args[8]) = (w.Fisher, w.Vector);
        Refused(CliRunner.Run(args), output, "sweep: the safety vector and the Fisher are swapped");
    }

    [Fact]
    public void ARecipeRefusesSwappedInputsAtItsRealignStep()
    {
        using var w = new World();
        File.WriteAllText(w.Dir["recipe.yaml"], """
            output: out
            steps:
              - realign: {base: finetuned, finetuned: aligned, safety-vector: v.safetensors, fisher: f.safetensors, calibration: data.jsonl, modules: "q_proj,v_proj", blocksize: 8, nsamples: 2}
            """);
        var (code, _, err) = CliRunner.Run("run", w.Dir["recipe.yaml"]);
        Assert.Equal(2, code);
        Assert.Contains("are swapped", err);
        Assert.False(Directory.Exists(Path.Combine(w.Dir["out"], "realign")));
    }

    [Fact]
    public void ARecipeThatComputesTheSafetyVectorAndFisherItselfRefusesSwappedModelsBeforeAnyStepRuns()
    {
        // The safety vector and the Fisher are outputs of earlier steps, so they do not exist when the recipe is checked:
        // the models those steps name decide, as the files' metadata (aligned_fingerprint, model_fingerprint) decide later.
        using var w = new World();
        string Recipe(string name, string sv, string fisher, string realign)
        {
            File.WriteAllText(w.Dir[name], $$"""
                output: {{name}}-out
                steps:
                  - safety-vector: {{{sv}}, modules: "q_proj,v_proj"}
                  - fisher: {model: {{fisher}}, data: data.jsonl, modules: "q_proj,v_proj", batch-size: 2}
                  - realign: {{{realign}}, calibration: data.jsonl, modules: "q_proj,v_proj", blocksize: 8, nsamples: 2}
                """);
            return w.Dir[name];
        }
        void RefusedBeforeAnyStep(string recipe, params string[] fragments)
        {
            var (code, stdout, err) = CliRunner.Run("run", recipe);
            Assert.True(code == 2, $"exit {code}: {err}");
            Assert.Equal("", stdout);
            Assert.Single(err.Trim().Split('\n'));
            foreach (string f in fragments) Assert.True(err.Contains(f, StringComparison.Ordinal), $"not found: {f}\nin: {err}");
            Assert.False(Directory.Exists(recipe + "-out") && Directory.EnumerateFileSystemEntries(recipe + "-out").Any(), "a step ran");
        }
        // θ_A and θ_F swapped in the realign step (a copy of θ_A's directory counts as θ_A: same fingerprint).
        string copy = w.Dir["aligned-copy"];
        Directory.CreateDirectory(copy);
        foreach (string f in Directory.GetFiles(w.Aligned)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        RefusedBeforeAnyStep(Recipe("swapped.yaml", "aligned: aligned, unaligned: unaligned", "aligned", "base: finetuned, finetuned: aligned-copy"),
            "swapped.yaml line 5: realign: ", $"base {w.Finetuned} and finetuned {copy} are swapped", $"the recipe computes it from {w.Aligned}, which holds the same weights");
        // The Fisher step on θ_F, the models in their places.
        RefusedBeforeAnyStep(Recipe("fisher.yaml", "aligned: aligned, unaligned: unaligned", "finetuned", "base: aligned, finetuned: finetuned"),
            $"was computed from finetuned {w.Finetuned} as the aligned model θ_A", "but the safety vector");
        // The safety vector step with θ_A and θ_U swapped.
        RefusedBeforeAnyStep(Recipe("reversed.yaml", "aligned: unaligned, unaligned: aligned", "aligned", "base: aligned, finetuned: finetuned"),
            $"base {w.Aligned} is the unaligned model θ_U from which the recipe computes the safety vector");
        // Everything in its place runs.
        var ok = CliRunner.Run("run", Recipe("right.yaml", "aligned: aligned, unaligned: unaligned", "aligned", "base: aligned-copy, finetuned: finetuned"));
        Ok(ok);
        Assert.True(File.Exists(Path.Combine(w.Dir["right.yaml-out"], "realign", "model.safetensors")), ok.Err);
    }

    [Fact]
    public void ARecipeWithHubIdsRefusesSwappedModelsBeforeAnyStepRunsAsWithPaths()
    {
        // The same check with the models given as Hub IDs (from the cache): they are compared as the snapshots they resolve to.
        using var w = new World();
        string chat = IO.HubCacheTrees.Add(w.Dir["hub"], "org/chat", w.Aligned, "1111111111111111111111111111111111111111");
        IO.HubCacheTrees.Add(w.Dir["hub"], "org/harm", w.Unaligned, "2222222222222222222222222222222222222222");
        File.WriteAllText(w.Dir["hub.yaml"], """
            output: hub-out
            steps:
              - safety-vector: {aligned: org/harm, unaligned: org/chat, modules: "q_proj,v_proj"}
              - fisher: {model: org/chat, data: data.jsonl, modules: "q_proj,v_proj", batch-size: 2}
              - realign: {base: org/chat, finetuned: finetuned, calibration: data.jsonl, modules: "q_proj,v_proj", blocksize: 8, nsamples: 2}
            """);
        using var cache = HubCache.Override(w.Dir["hub"]);

        var (code, stdout, err) = CliRunner.Run("run", w.Dir["hub.yaml"]);

        Assert.True(code == 2, $"exit {code}: {err}");
        Assert.Equal("", stdout);
        Assert.Contains($"hub.yaml line 5: realign: base {chat} is the unaligned model θ_U from which the recipe computes the safety vector", err);
        Assert.False(Directory.Exists(w.Dir["hub-out"]) && Directory.EnumerateFileSystemEntries(w.Dir["hub-out"]).Any(), "a step ran");
    }

    [Fact]
    public void WhatOnlyNamesOrDerivationsSuggestIsSaidAndTheRunProceeds()
    {
        using var w = new World();
        // θ_F realigned (an irr output records the models it was made from), given as θ_A to the next realignment: refused.
        Ok(CliRunner.Run(w.Realign(w.Dir["repaired"])));
        string output = w.Dir["out"];
        Refused(CliRunner.Run(w.Realign(output, @base: w.Dir["repaired"])), output,
            $"realign: base {w.Dir["repaired"]} was made from finetuned {w.Finetuned}", "irr-report.json records its fingerprint", "are base and finetuned swapped?");
        // The same pair to irr safety-vector: IRR's θ_U is made from θ_A, but Safe LoRA's V (chat − base) has the aligned
        // model made from the unaligned one, so the order proves nothing there.
        string vector = w.Dir["v2.safetensors"];
        var sv = CliRunner.Run("safety-vector", "--aligned", w.Dir["repaired"], "--unaligned", w.Finetuned, "--modules", World.Modules, "-o", vector);
        Ok(sv);
        Assert.Contains($"warning: safety-vector: aligned {w.Dir["repaired"]} was made from unaligned {w.Finetuned}", sv.Err);
        Assert.True(File.Exists(vector));
        // A base whose config.json names the fine-tune as its origin (_name_or_path, as transformers saves it): said.
        SetNameOrPath(w.Aligned, w.Finetuned);
        var run = CliRunner.Run(w.Realign(output));
        Ok(run);
        Assert.Contains($"warning: realign: {w.Aligned}'s config.json names {w.Finetuned} as the model it was made from (_name_or_path): are base and finetuned swapped?", run.Err);
    }

    // cp -r of a model directory (it has no subdirectories).
    private static string Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.EnumerateFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        return to;
    }

    private static void SetNameOrPath(string model, string origin)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!.AsObject();
        config["_name_or_path"] = origin;
        File.WriteAllText(Path.Combine(model, "config.json"), config.ToJsonString());
    }

    [Fact]
    public void AFullFineTuneThatNamesAnotherBaseIsRefusedByItsSizeAndSaidByItsWeights()
    {
        using var w = new World();
        string output = w.Dir["out"];
        // θ_F's config.json names the model it was loaded from (transformers' _name_or_path): a model of another size.
        string wider = TinyModels.Create(w.Dir["wider"], TinyModels.LlamaConfig.Replace("\"vocab_size\": 64", "\"vocab_size\": 96"), seed: 1);
        SetNameOrPath(w.Finetuned, wider);
        Refused(CliRunner.Run(w.Realign(output)), output, $"realign: finetuned {w.Finetuned}'s config.json names {wider} as the model it was loaded from (_name_or_path)",
            "vocab_size 96", $"but base {w.Aligned} has", "vocab_size 261");
        // Same size, other weights (an intermediate checkpoint, or another base): said.
        SetNameOrPath(w.Finetuned, w.Unaligned);
        var run = CliRunner.Run(w.Realign(output));
        Ok(run);
        Assert.Contains($"names {w.Unaligned} as the model it was loaded from (_name_or_path), whose weights differ from base {w.Aligned}'s", run.Err);
        Directory.Delete(output, recursive: true);
        // A copy of the base, itself (saved in place after loading from there), a Hub ID or a path of another machine: nothing to say.
        string copy = Copy(w.Aligned, w.Dir["aligned-copy"]);
        foreach (string origin in new[] { copy, w.Finetuned, "meta-llama/Llama-2-7b-chat-hf", "/home/someone/checkpoints/run-3" })
        {
            SetNameOrPath(w.Finetuned, origin);
            var quiet = CliRunner.Run(w.Realign(output));
            Ok(quiet);
            Assert.DoesNotContain("warning", quiet.Err);
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public void IrrRecordsTheFingerprintsItChecksAgainst()
    {
        using var w = new World();
        string fa = ModelFingerprint.Of(w.Aligned)!, fu = ModelFingerprint.Of(w.Unaligned)!;
        using (var v = SafetensorsFile.Open(w.Vector))
        {
            Assert.Equal("safety-vector", v.Metadata["irr"]);
            Assert.Equal(fa, v.Metadata[InputChecks.AlignedFingerprintKey]);
            Assert.Equal(fu, v.Metadata[InputChecks.UnalignedFingerprintKey]);
        }
        using (var f = SafetensorsFile.Open(w.Fisher)) Assert.Equal(fa, f.Metadata[InputChecks.ModelFingerprintKey]);
        Ok(CliRunner.Run(w.Realign(w.Dir["repaired"])));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Dir["repaired"], "irr-report.json")))!;
        Assert.Equal(fa, (string)report["inputs"]!["fingerprints"]!["base"]!);
        Assert.Equal(ModelFingerprint.Of(w.Finetuned), (string)report["inputs"]!["fingerprints"]!["finetuned"]!);
    }

    [Fact]
    public void ACopiedLinkedOrWidenedBasePassesWithoutAWord()
    {
        using var w = new World();
        // cp -r, a symbolic link, and the base widened from bf16 to f32 (the same values): the safety vector's θ_A.
        string copy = Copy(w.Aligned, w.Dir["copy"]);
        string link = w.Dir["link"];
        Directory.CreateSymbolicLink(link, w.Aligned);
        string widened = Derive(w.Aligned, w.Dir["f32"], seed: 0, TensorDType.F32, scale: 0);
        foreach (string @base in new[] { copy, link, widened })
        {
            string output = w.Dir[$"out-{Path.GetFileName(@base)}"];
            var run = CliRunner.Run(w.Realign(output, @base: @base));
            Ok(run);
            Assert.DoesNotContain("warning", run.Err);
        }
        // A base the safety vector was not computed from (another model of the same architecture) is said, and the run proceeds.
        string other = Derive(w.Aligned, w.Dir["other"], seed: 9);
        var warned = CliRunner.Run(w.Realign(w.Dir["out-other"], @base: other));
        Ok(warned);
        Assert.Contains($"warning: realign: the safety vector {w.Vector} was computed from another aligned model than base {other}", warned.Err);
    }

    private static JsonObject AdapterConfig(string adapter) => JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")))!.AsObject();

    private static void SetAdapterBase(string adapter, string? named)
    {
        var config = AdapterConfig(adapter);
        config["base_model_name_or_path"] = named;
        File.WriteAllText(Path.Combine(adapter, "adapter_config.json"), config.ToJsonString());
    }

    [Fact]
    public void AnAdapterOfAnotherBaseIsRefusedAndAHubIdIsOnlyWarnedAbout()
    {
        using var w = new World();
        string adapter = w.Dir["adapter"];
        Ok(CliRunner.Run("train", "--model", w.Aligned, "--data", w.Data, "--lora", "--rank", "2", "--targets", World.Modules, "--epochs", "1", "-o", adapter));
        Assert.Equal(Path.GetFullPath(w.Aligned), (string)AdapterConfig(adapter)["base_model_name_or_path"]!);
        string output = w.Dir["out"];
        string[] Realign(string @base) => ["realign", "--base", @base, "--adapter", adapter, "--safety-vector", w.Vector, "--fisher", w.Fisher,
            "--calibration", w.Data, "--blocksize", "8", "--nsamples", "2", "-o", output];

        // Trained on θ_A, applied to θ_F: same architecture, other weights.
        Refused(CliRunner.Run(Realign(w.Finetuned)), output, $"{adapter}: adapter_config.json names its base '{Path.GetFullPath(w.Aligned)}'",
            $"whose weights differ from those of the base given, {w.Finetuned}");
        // The same in every command that takes an adapter on a base.
        Refused(CliRunner.Run("baseline", "resta", "--base", w.Finetuned, "--adapter", adapter, "--safety-vector", w.Vector, "-o", output), output, "names its base");
        Refused(CliRunner.Run("baseline", "safelora", "--base", w.Finetuned, "--adapter", adapter, "--safety-vector", w.Vector, "--layers", "1", "-o", output), output, "names its base");
        Refused(CliRunner.Run("safety-vector", "--aligned", w.Finetuned, "--unaligned-adapter", adapter, "--modules", World.Modules, "-o", w.Dir["x.safetensors"]), w.Dir["x.safetensors"], "names its base");
        Refused(CliRunner.Run("score", "--model", w.Finetuned, "--adapter", adapter, "--data", w.Data, "-o", w.Dir["scores.json"]), w.Dir["scores.json"], "names its base");

        // A named base of another size (its config says so) is refused by the config alone.
        string wider = TinyModels.Create(w.Dir["wider"], TinyModels.LlamaConfig.Replace("\"vocab_size\": 64", "\"vocab_size\": 96"), seed: 1);
        SetAdapterBase(adapter, wider);
        Refused(CliRunner.Run(Realign(w.Aligned)), output, $"names its base '{wider}'", "vocab_size 96", $"the base given, {w.Aligned}");

        // The base copied elsewhere, named relative to the working directory, or through a link: it belongs.
        string copy = Copy(w.Aligned, w.Dir["aligned-copy"]);
        Directory.CreateSymbolicLink(w.Dir["aligned-link"], w.Aligned);
        foreach (string named in new[] { copy, Path.GetRelativePath(Environment.CurrentDirectory, w.Aligned), w.Dir["aligned-link"] })
        {
            SetAdapterBase(adapter, named);
            var (verdict, message) = AdapterBase.Check(adapter, w.Aligned);
            Assert.True(verdict == AdapterBase.Verdict.Belongs, message);
        }
        var ok = CliRunner.Run(Realign(w.Aligned));
        Ok(ok);
        Assert.DoesNotContain("warning", ok.Err);
        Directory.Delete(output, recursive: true);

        // A Hub ID: the base's directory of that name belongs; another name is said, and the run proceeds.
        SetAdapterBase(adapter, "meta-llama/aligned");
        Assert.Equal(AdapterBase.Verdict.Belongs, AdapterBase.Check(adapter, w.Aligned).Verdict);
        SetAdapterBase(adapter, "meta-llama/Llama-2-7b-chat-hf");
        var warned = CliRunner.Run(Realign(w.Aligned));
        Ok(warned);
        Assert.Contains($"warning: {adapter}: adapter_config.json names its base 'meta-llama/Llama-2-7b-chat-hf' (base_model_name_or_path), which is no model directory here", warned.Err);
        // … unless the base is that ID's snapshot in the Hugging Face cache (models--ORG--NAME/snapshots/REVISION) …
        string snapshot = Path.Combine(w.Dir["hub"], "models--meta-llama--Llama-2-7b-chat-hf", "snapshots", "08751db2aca9bf2f7f80d2e516117a53d7450235");
        Copy(w.Aligned, snapshot);
        Assert.Equal(AdapterBase.Verdict.Belongs, AdapterBase.Check(adapter, snapshot).Verdict);
        // … or the base's config.json records that ID (a Hub download's _name_or_path).
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(w.Aligned, "config.json")))!.AsObject();
        config["_name_or_path"] = "meta-llama/Llama-2-7b-chat-hf";
        File.WriteAllText(Path.Combine(w.Aligned, "config.json"), config.ToJsonString());
        Assert.Equal(AdapterBase.Verdict.Belongs, AdapterBase.Check(adapter, w.Aligned).Verdict);
    }

    [Fact]
    public void AHubIdInTheHuggingFaceCacheIsComparedByItsConfig()
    {
        using var w = new World();
        string adapter = w.Dir["adapter"];
        Ok(CliRunner.Run("train", "--model", w.Aligned, "--data", w.Data, "--lora", "--rank", "2", "--targets", World.Modules, "--epochs", "1", "-o", adapter));
        SetAdapterBase(adapter, "org/some-model");
        // The cache as huggingface_hub lays it out: HF_HUB_CACHE/models--org--some-model/snapshots/REVISION/config.json.
        string snapshot = Path.Combine(w.Dir["hub"], "models--org--some-model", "snapshots", "0123abcd");
        Directory.CreateDirectory(snapshot);
        File.WriteAllText(Path.Combine(snapshot, "config.json"), TinyModels.LlamaConfig.Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 4"));
        var (verdict, message) = AdapterBase.Check(adapter, w.Aligned, w.Dir["hub"]);
        Assert.Equal(AdapterBase.Verdict.Mismatch, verdict);
        Assert.Contains("which the Hugging Face cache holds as", message);
        Assert.Contains("num_hidden_layers 4", message);
        // The same configuration: nothing proves another model, nothing proves the same one.
        File.WriteAllText(Path.Combine(snapshot, "config.json"), File.ReadAllText(Path.Combine(w.Aligned, "config.json")));
        (verdict, message) = AdapterBase.Check(adapter, w.Aligned, w.Dir["hub"]);
        Assert.Equal(AdapterBase.Verdict.Unknown, verdict);
        Assert.Contains("names its base 'org/some-model' (base_model_name_or_path), which the Hugging Face cache holds with the same shapes as the base given", message);
        Assert.DoesNotContain("no config.json", message); // the cache does hold it
    }
}
