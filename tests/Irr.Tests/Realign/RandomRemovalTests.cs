using Irr.IO;
using Irr.Model;
using Irr.Realign;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>The random-removal control of the demo: IRR's per-matrix count, a seeded uniform mask, the same recalibration.</summary>
public class RandomRemovalTests
{
    private static readonly IReadOnlyList<string> Modules = ["q_proj", "v_proj", "down_proj"];

    // θ_A, θ_F = θ_A + noise, and safety vector / Fisher files of random values (seeded).
    private static (string A, string F, string V, string Fi) Problem(TempDir dir)
    {
        string a = TinyModels.Create(dir["aligned"], seed: 1, dtype: TensorDType.F32);
        using var source = CheckpointWeights.Open(a);
        var f = ParameterSet.LoadAll(source);
        var rng = new Random(2);
        foreach (var (_, values) in f.Tensors)
            for (int i = 0; i < values.Length; i++) values[i] += (float)((rng.NextDouble() * 2 - 1) * 0.05);
        f.Save(dir["finetuned"], TensorDType.F32, a);
        var config = source.Config;
        Dictionary<string, float[]> Values(int seed, bool positive)
        {
            var r = new Random(seed);
            return TargetModules.WeightNames(config, Modules).ToDictionary(n => n, n =>
                Enumerable.Range(0, (int)config.ExpectedTensors().First(t => t.Name == n).Shape.Aggregate(1L, (x, y) => x * y))
                    .Select(_ => (float)(positive ? r.NextDouble() : r.NextDouble() * 2 - 1)).ToArray());
        }
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        Fisher.Write(dir["v.safetensors"], config, Modules, Values(3, false), meta);
        Fisher.Write(dir["f.safetensors"], config, Modules, Values(4, true), meta);
        return (a, dir["finetuned"], dir["v.safetensors"], dir["f.safetensors"]);
    }

    private static (RealignReport Report, Dictionary<string, float[]> Weights) Run(string a, string f, string v, string fi, RealignOptions options)
    {
        using var wa = CheckpointWeights.Open(a);
        using var wf = CheckpointWeights.Open(f);
        using var vFile = SafetensorsFile.Open(v);
        using var fFile = SafetensorsFile.Open(fi);
        var rng = new Random(5);
        var calibration = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, 12).Select(_ => rng.Next(64)).ToArray()).ToList();
        var weights = new Dictionary<string, float[]>();
        var report = new Realigner(wa, wf, vFile, fFile, options).Run(calibration, (n, w) => weights[n] = w);
        return (report, weights);
    }

    [Fact]
    public void RemovesExactlyIrrsCountPerMatrixWithASeededMask()
    {
        using var dir = new TempDir();
        var (a, f, v, fi) = Problem(dir);
        var irr = Run(a, f, v, fi, new RealignOptions { Modules = Modules });
        var counts = irr.Report.RemovalCounts();
        Assert.Equal(2 * Modules.Count, counts.Count);
        Assert.All(counts.Values, c => Assert.True(c > 0));

        var random = Run(a, f, v, fi, new RealignOptions { Modules = Modules, Obs = new ObsOptions { Strategy = new RandomAtCountStrategy(counts, 7) } });
        foreach (var m in irr.Report.Modules)
            Assert.Equal(m.Removed, random.Report.Modules.Single(r => r.Layer == m.Layer && r.Module == m.Module).Removed);

        // Without recalibration the removed entries are exactly θ_A's, the rest θ_F's: count them independently.
        var plain = Run(a, f, v, fi, new RealignOptions { Modules = Modules, Obs = new ObsOptions { Strategy = new RandomAtCountStrategy(counts, 7), Recalibrate = false } });
        using var wa = CheckpointWeights.Open(a);
        using var wf = CheckpointWeights.Open(f);
        foreach (var (name, count) in counts)
        {
            float[] s1 = [], s2 = [];
            var av = wa.Load(name, ref s1).ToArray();
            var fv = wf.Load(name, ref s2).ToArray();
            var w = plain.Weights[name];
            int reverted = 0;
            for (int i = 0; i < w.Length; i++)
            {
                if (w[i] == av[i] && av[i] != fv[i]) reverted++;
                else Assert.Equal(fv[i], w[i]);
            }
            Assert.Equal(count, reverted);
        }

        // Seeded: the same seed gives the same model, another seed another one (and not IRR's).
        var again = Run(a, f, v, fi, new RealignOptions { Modules = Modules, Obs = new ObsOptions { Strategy = new RandomAtCountStrategy(counts, 7) } });
        var other = Run(a, f, v, fi, new RealignOptions { Modules = Modules, Obs = new ObsOptions { Strategy = new RandomAtCountStrategy(counts, 8) } });
        string q = ModelConfig.LinearWeightName(0, "q_proj");
        Assert.Equal(random.Weights[q], again.Weights[q]);
        Assert.NotEqual(random.Weights[q], other.Weights[q]);
        Assert.NotEqual(random.Weights[q], irr.Weights[q]);
    }

    [Fact]
    public void MaskHasTheCountAndDependsOnSeedAndMatrix()
    {
        var plan = new RandomAtCountStrategy(new Dictionary<string, long> { ["m0"] = 37, ["m1"] = 37 }, 3);
        var m0 = plan.Mask(new TargetMatrix("m0", 0, "q_proj", 10, 12));
        Assert.Equal(37, m0.Count(b => b));
        Assert.Equal(m0, plan.Mask(new TargetMatrix("m0", 0, "q_proj", 10, 12)));
        Assert.NotEqual(m0, plan.Mask(new TargetMatrix("m1", 1, "q_proj", 10, 12)));
        Assert.NotEqual(m0, new RandomAtCountStrategy(plan.Counts, 4).Mask(new TargetMatrix("m0", 0, "q_proj", 10, 12)));
        Assert.DoesNotContain(true, plan.Mask(new TargetMatrix("absent", 0, "q_proj", 10, 12)));
        Assert.Throws<IrrException>(() => new RandomAtCountStrategy(new Dictionary<string, long> { ["m0"] = 121 }, 3).Mask(new TargetMatrix("m0", 0, "q_proj", 10, 12)));
    }
}
