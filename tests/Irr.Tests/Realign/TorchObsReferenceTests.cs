using System.Text.Json;
using Irr.Realign;

namespace Irr.Tests.Realign;

/// <summary>
/// The per-matrix step against the same algorithm written in PyTorch the way the SparseGPT-based
/// reference is (bench/torch/obs_reference.py, which made tests/fixtures/torch/obs_reference.json):
/// 48 × 80, block size 32, sparsity 0.25 (masks chosen per block on compensated values, stable Fisher
/// order), a dead input column, percdamp 0.01.
/// </summary>
public class TorchObsReferenceTests
{
    [Fact]
    public void MatchesThePyTorchImplementation()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Text.Fixtures.Local("torch/obs_reference.json")));
        var root = doc.RootElement;
        float[] Floats(string key) => root.GetProperty(key).EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
        int rows = root.GetProperty("rows").GetInt32(), cols = root.GetProperty("cols").GetInt32();
        var options = new ObsOptions
        {
            BlockSize = root.GetProperty("blocksize").GetInt32(),
            PercDamp = root.GetProperty("percdamp").GetDouble(),
            Strategy = RemovalMethods.Irr.Create(root.GetProperty("sparsity").GetDouble()),
        };
        var (h, delta, v, f, expected) = (Floats("H"), Floats("delta"), Floats("v"), Floats("fisher"), Floats("expected"));
        var factor = ObsRecalibrator.Factor(h, cols, options, out _)!;
        Assert.True(factor.Dead[7]);
        var removed = new bool[rows * cols];
        var result = ObsRecalibrator.Apply(delta, rows, cols, factor, v, f, options, removed);

        // Both sides are float32 with different summation orders (our blocked Cholesky and GEMM, torch's
        // LAPACK/BLAS): agreement to ~1e−5 of the largest delta. The masks (zeros in the output) must agree.
        float scale = expected.Max(Math.Abs);
        int zerosTorch = expected.Count(x => x == 0f), zerosOurs = delta.Count(x => x == 0f);
        Assert.Equal(zerosTorch, zerosOurs);
        for (int i = 0; i < delta.Length; i++)
        {
            Assert.True((expected[i] == 0f) == (delta[i] == 0f), $"[{i / cols},{i % cols}]: torch {expected[i]}, irr {delta[i]}");
            Assert.True(Math.Abs(delta[i] - expected[i]) <= 1e-5f * scale, $"[{i / cols},{i % cols}]: torch {expected[i]}, irr {delta[i]}");
        }
        Assert.True(result.Removed > rows * cols / 4, $"removed only {result.Removed}");
    }
}
