using Irr.IO;
using Irr.Jobs;
using Irr.Model;
using Irr.Realign;
using Irr.Tests.IO;

namespace Irr.Tests.Jobs;

/// <summary>The jobs check their own options, with the library's wording (no CLI flag), before touching a file.</summary>
public class JobValidationTests
{
    private static string Refused(IJob job) => Assert.Throws<IrrException>(job.Validate).Message;

    private static RealignJob Realign => new() { Base = "/nonexistent/a", Finetuned = "/nonexistent/f", SafetyVector = "v", Fisher = "f", Calibration = "c", OutputPath = "/nonexistent/out" };

    [Fact]
    public void RealignOptionsAreCheckedByTheJob()
    {
        Realign.Validate(); // nothing is read: the paths need not exist
        Assert.Equal("realign: give exactly one of finetuned and adapter", Refused(Realign with { Adapter = "x" }));
        Assert.Equal("realign: sparsity must be between 0 and 1, not 1.5", Refused(Realign with { Sparsity = 1.5 }));
        Assert.StartsWith("realign: method random-at-count needs removal-counts", Refused(Realign with { Method = "random-at-count" }));
        Assert.Equal("realign: method must be irr, irr-more, fisher-only or random-at-count, not 'magic'", Refused(Realign with { Method = "magic" }));
        Assert.Equal("realign: dtype must be keep, bf16, f16 or f32, not 'f8'", Refused(Realign with { DType = "f8" }));
        Assert.Equal("realign: blocksize must be at least 1, not 0", Refused(Realign with { BlockSize = 0 }));
        Assert.Equal("realign: calibration is required (except for a dry run)", Refused(Realign with { Calibration = null }));
        (Realign with { Calibration = null, OutputPath = null, DryRun = true }).Validate();
        Assert.Null((Realign with { DryRun = true }).Output);
        Assert.Equal(["/nonexistent/a", "/nonexistent/f", "v", "f", "c"], Realign.Inputs);
    }

    [Fact]
    public void OtherJobsCheckTheirOptions()
    {
        Assert.Equal("fisher: batch-size must be at least 1, not 0",
            Refused(new FisherJob { Model = "m", Data = "d", OutputPath = "o", BatchSize = 0 }));
        Assert.Equal("safety-vector: give exactly one of unaligned and unaligned-adapter",
            Refused(new SafetyVectorJob { Aligned = "a", Unaligned = "u", UnalignedAdapter = "l", OutputPath = "o" }));
        Assert.Equal("train: give exactly one of full and lora", Refused(new TrainJob { Model = "m", Data = "d", OutputPath = "o" }));
        Assert.Equal("train: schedule must be cosine, linear or constant, not 'step'",
            Refused(new TrainJob { Model = "m", Data = "d", OutputPath = "o", Full = true, Schedule = "step" }));
    }

    [Fact]
    public void ABadOptionFailsTheRunBeforeAnyOutputIsWritten()
    {
        using var dir = new TempDir();
        Assert.Throws<IrrException>(() => (Realign with { Sparsity = -1, OutputPath = dir["out"] }).Run());
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void ProvenanceNamesWhereATemporaryDirectoryWillBe()
    {
        string tmp = Path.Combine(Path.GetTempPath(), "x.irr-tmp"), final = Path.Combine(Path.GetTempPath(), "x");
        Assert.Equal(Path.Combine(tmp, "models/a"), Provenance.PathOf(Path.Combine(tmp, "models/a")));
        using (Provenance.Relocate(tmp, final))
        {
            Assert.Equal(Path.Combine(final, "models/a"), Provenance.PathOf(Path.Combine(tmp, "models/a")));
            Assert.Equal(final, Provenance.PathOf(tmp));
            Assert.Equal(tmp + "2/a", Provenance.PathOf(tmp + "2/a")); // a sibling that shares the prefix is not inside
        }
        Assert.Equal(Path.Combine(tmp, "models/a"), Provenance.PathOf(Path.Combine(tmp, "models/a")));
    }

    [Fact]
    public void TheArchitectureCheckNamesAMissingTargetWeight()
    {
        using var dir = new TempDir();
        string a = TinyModels.Create(dir["a"]);
        string b = TinyModels.Create(dir["b"], include: (name, _) => name != "model.layers.1.mlp.down_proj.weight");
        using var wa = CheckpointWeights.Open(a);
        using var wb = new CheckpointWeights(ModelDirectory.Open(b, validate: false));
        Architecture.RequireSame(wa, wa, ["down_proj"]);
        var e = Assert.Throws<IrrException>(() => Architecture.RequireSame(wa, wb, ["q_proj"]));
        Assert.Contains("has no tensor 'model.layers.1.mlp.down_proj.weight'", e.Message);
        e = Assert.Throws<IrrException>(() => Architecture.RequireSame(wb, wb, ["down_proj"]));
        Assert.Contains("has no target weight 'model.layers.1.mlp.down_proj.weight'", e.Message);
    }

    [Fact]
    public void AnOutputOfTheWrongKindIsRefusedBeforeAnyInputIsRead()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["existing"]);
        File.WriteAllText(dir["file.jsonl"], "{}\n");
        // The models do not exist: the output is checked first.
        var e = Assert.Throws<IrrException>(() => new SafetyVectorJob { Aligned = dir["no-a"], Unaligned = dir["no-u"], OutputPath = dir["existing"] }.Run());
        Assert.Equal($"{dir["existing"]}: is a directory; give a file name for the output", e.Message);
        e = Assert.Throws<IrrException>(() => new FisherJob { Model = dir["no-m"], Data = dir["no-d"], OutputPath = dir["existing"] }.Run());
        Assert.Contains("is a directory", e.Message);
        e = Assert.Throws<IrrException>(() => new Irr.Eval.EvalTaskJob { Model = dir["no-m"], Data = dir["no-d"], Metric = "exact", OutputDir = dir["file.jsonl"] }.Run());
        Assert.Equal($"{dir["file.jsonl"]}: is a file; give a directory for the output", e.Message);
        Assert.Equal("{}\n", File.ReadAllText(dir["file.jsonl"])); // untouched
    }

    [Fact]
    public void SeedAndRemovalCountsBelongToTheRandomControl()
    {
        Assert.Equal("realign: removal-counts and seed apply to method random-at-count only", Refused(Realign with { Seed = 3 }));
        (Realign with { Method = "random-at-count", RemovalCounts = "r.json", Seed = 3 }).Validate();
        Assert.Contains("r.json", (Realign with { Method = "random-at-count", RemovalCounts = "r.json" }).Inputs);
    }
}
