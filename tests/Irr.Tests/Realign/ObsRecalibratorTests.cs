using Irr.Realign;
using Irr.Tensors;

namespace Irr.Tests.Realign;

public class ObsRecalibratorTests
{
    // A random problem: X (tokens × cols) → H = 2/N·XᵀX, Δ, v, F with seeded values. X has correlated
    // columns (rank-8 structure plus noise), as layer inputs do, so compensation has something to use.
    private static (float[] H, float[] X, float[] W, float[] V, float[] F) Problem(int rows, int cols, int tokens, int seed, int deadColumn = -1)
    {
        var rng = new Random(seed);
        var x = new float[tokens * cols];
        var z = Enumerable.Range(0, tokens * 8).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        var m = Enumerable.Range(0, 8 * cols).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        for (int t = 0; t < tokens; t++)
            for (int c = 0; c < cols; c++)
            {
                double s = 0.1 * (rng.NextDouble() * 2 - 1);
                for (int k = 0; k < 8; k++) s += z[t * 8 + k] * m[k * cols + c];
                x[t * cols + c] = (float)s;
            }
        if (deadColumn >= 0) for (int t = 0; t < tokens; t++) x[t * cols + deadColumn] = 0;
        var h = new float[cols * cols];
        Syrk.AddXtX(x, tokens, cols, 2f / tokens, h);
        var w = new float[rows * cols];
        var v = new float[rows * cols];
        var f = new float[rows * cols];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = (float)(rng.NextDouble() * 2 - 1) * 0.01f;
            v[i] = (float)(rng.NextDouble() * 2 - 1);
            f[i] = (float)rng.NextDouble();
        }
        return (h, x, w, v, f);
    }

    /// <summary>
    /// The textbook OBS sequence in double precision with the explicit inverse (Frantar et al., OBC):
    /// for each column i in order, every removed entry r of column i is zeroed and its error
    /// w_ri / [H⁻¹]_ii compensated on the columns after i through row i of H⁻¹; then column i is
    /// eliminated from H⁻¹ (H⁻¹ ← H⁻¹ − H⁻¹[:, i]·H⁻¹[i, :] / H⁻¹_ii). Dead columns and damping as the spec says.
    /// </summary>
    internal static double[] ReferenceObs(float[] hIn, float[] wIn, bool[] mask, int rows, int cols, double percdamp, bool recalibrate)
    {
        var h = Array.ConvertAll(hIn, x => (double)x);
        var w = Array.ConvertAll(wIn, x => (double)x);
        double mean = 0;
        for (int j = 0; j < cols; j++)
        {
            if (h[j * cols + j] == 0) { h[j * cols + j] = 1; for (int r = 0; r < rows; r++) w[r * cols + j] = 0; }
            mean += h[j * cols + j];
        }
        mean /= cols;
        for (int j = 0; j < cols; j++) h[j * cols + j] += percdamp * mean;
        var hinv = Invert(h, cols);
        for (int i = 0; i < cols; i++)
        {
            double d = hinv[i * cols + i];
            for (int r = 0; r < rows; r++)
            {
                if (!mask[r * cols + i]) continue;
                double err = w[r * cols + i] / d;
                if (recalibrate)
                    for (int j = i + 1; j < cols; j++) w[r * cols + j] -= err * hinv[i * cols + j];
                w[r * cols + i] = 0;
            }
            var col = new double[cols];
            var row = new double[cols];
            for (int j = 0; j < cols; j++) { col[j] = hinv[j * cols + i]; row[j] = hinv[i * cols + j]; }
            for (int a = 0; a < cols; a++)
                for (int b = 0; b < cols; b++) hinv[a * cols + b] -= col[a] * row[b] / d;
        }
        return w;
    }

    private static double[] Invert(double[] a, int n)
    {
        var m = (double[])a.Clone();
        var inv = new double[n * n];
        for (int i = 0; i < n; i++) inv[i * n + i] = 1;
        for (int c = 0; c < n; c++)
        {
            double p = m[c * n + c];
            for (int j = 0; j < n; j++) { m[c * n + j] /= p; inv[c * n + j] /= p; }
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue;
                double f = m[r * n + c];
                for (int j = 0; j < n; j++) { m[r * n + j] -= f * m[c * n + j]; inv[r * n + j] -= f * inv[c * n + j]; }
            }
        }
        return inv;
    }

    private static HessianFactor Factor(float[] h, int cols, double percdamp = 0.01)
    {
        var factor = ObsRecalibrator.Factor(h, cols, new ObsOptions { PercDamp = percdamp }, out var failure);
        Assert.True(factor is not null, failure.ToString());
        return factor!;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(128)]
    [InlineData(40)] // the full width
    public void WithAFixedMaskEveryBlockSizeMatchesTheExplicitInverseReference(int blockSize)
    {
        int rows = 24, cols = 40;
        var (h, _, w0, v, f) = Problem(rows, cols, 200, seed: 1, deadColumn: 13);
        var rng = new Random(2);
        var mask = Enumerable.Range(0, rows * cols).Select(_ => rng.NextDouble() < 0.4).ToArray();
        var expected = ReferenceObs(h, w0, mask, rows, cols, 0.01, recalibrate: true);
        var w = (float[])w0.Clone();
        ObsRecalibrator.Apply(w, rows, cols, Factor(h, cols), v, f, new ObsOptions { BlockSize = blockSize, Strategy = new FixedMask(mask) });
        double scale = w0.Max(Math.Abs);
        for (int i = 0; i < w.Length; i++)
            Assert.True(Math.Abs(w[i] - expected[i]) <= 2e-5 * scale, $"block {blockSize}: W[{i / cols},{i % cols}] = {w[i]}, reference {expected[i]}");
        // Removed entries are exactly zero, and so is the dead column.
        for (int i = 0; i < w.Length; i++)
            if (mask[i] || i % cols == 13) Assert.Equal(0f, w[i]);
    }

    [Fact]
    public void IrrRemovesEveryConflictWhenSparsityIsZero()
    {
        int rows = 16, cols = 24;
        var (h, _, w0, v, f) = Problem(rows, cols, 100, seed: 3);
        var w = (float[])w0.Clone();
        var removed = new bool[rows * cols];
        var result = ObsRecalibrator.Apply(w, rows, cols, Factor(h, cols), v, f, new ObsOptions { BlockSize = 8, Recalibrate = false }, removed);
        // Without recalibration nothing is compensated, so the conflicts are those of the input.
        for (int i = 0; i < w.Length; i++)
        {
            bool conflict = Math.Sign(w0[i]) != Math.Sign(v[i]);
            Assert.Equal(conflict, removed[i]);
            Assert.Equal(conflict ? 0f : w0[i], w[i]);
        }
        Assert.Equal(result.Conflicts, result.Removed);
        Assert.Equal(removed.Count(x => x), result.Removed);
    }

    [Fact]
    public void SparsityKeepsTheLowestFisherConflictsStablyPerBlock()
    {
        // One row, one block of 6: conflicts at columns 0, 2, 3, 5 (signs disagree) with Fisher
        // 0.5, 0.2, 0.2, 0.9. s = 0.5 keeps ⌊4·0.5⌋ = 2: the lowest are the tie 0.2 at 2 and 3 → kept.
        float[] w = [1, 1, -1, 1, -1, -1];
        float[] v = [-1, 1, 1, -1, -1, 1];
        float[] f = [0.5f, 0.1f, 0.2f, 0.2f, 0.3f, 0.9f];
        var identity = new float[36];
        for (int i = 0; i < 6; i++) identity[i * 6 + i] = 1;
        var removed = new bool[6];
        var r = ObsRecalibrator.Apply(w, 1, 6, Factor(identity, 6, 0), v, f, new ObsOptions { Strategy = RemovalMethods.Irr.Create(0.5), Recalibrate = false }, removed);
        Assert.Equal([true, false, false, false, false, true], removed);
        Assert.Equal(4, r.Conflicts);
        // s = 0.6: ⌊4·0.6⌋ = 2 as well (truncation); s = 0.75 keeps 3: 0.2, 0.2, 0.5 → only column 5 removed.
        removed = new bool[6];
        ObsRecalibrator.Apply((float[])[1, 1, -1, 1, -1, -1], 1, 6, Factor(identity, 6, 0), v, f, new ObsOptions { Strategy = RemovalMethods.Irr.Create(0.75), Recalibrate = false }, removed);
        Assert.Equal([false, false, false, false, false, true], removed);
        // A tie at the cut: Fisher all equal, keep 1 of 4 → the first conflict (column 0) in row-major order is kept.
        removed = new bool[6];
        ObsRecalibrator.Apply((float[])[1, 1, -1, 1, -1, -1], 1, 6, Factor(identity, 6, 0), v, new float[6], new ObsOptions { Strategy = RemovalMethods.Irr.Create(0.25), Recalibrate = false }, removed);
        Assert.Equal([false, false, true, true, false, true], removed);
    }

    [Fact]
    public void ZeroCountsAsASignForConflicts()
    {
        // sign(0) = 0: a zero delta next to a non-zero v conflicts; a non-zero delta next to v = 0 too;
        // −0.0 is 0; both zero agree.
        float[] w = [0f, 1f, -0f, 0f];
        float[] v = [1f, 0f, 0f, 0f];
        var identity = new float[16];
        for (int i = 0; i < 4; i++) identity[i * 4 + i] = 1;
        var removed = new bool[4];
        var r = ObsRecalibrator.Apply(w, 1, 4, Factor(identity, 4, 0), v, new float[4], new ObsOptions { Recalibrate = false }, removed);
        Assert.Equal([true, true, false, false], removed);
        Assert.Equal(2, r.Conflicts);
    }

    [Fact]
    public void IrrMoreRemovesConflictsFirstThenTheLeastImportantAgreeingDeltas()
    {
        // Scores: F on conflicts, −F elsewhere. Block of 4, one row: conflicts at 0 (F .3) and 2 (F .1);
        // agreeing at 1 (F .4 → −.4) and 3 (F 0 → −0). Ascending: −.4 (1), −0 (3), .1 (2), .3 (0).
        // s = 0.5 keeps 2 → keeps 1 and 3, removes the conflicts; s = 0.25 keeps 1 → also removes 3.
        float[] v = [1, 1, 1, 1];
        float[] f = [0.3f, 0.4f, 0.1f, 0f];
        var identity = new float[16];
        for (int i = 0; i < 4; i++) identity[i * 4 + i] = 1;
        var removed = new bool[4];
        ObsRecalibrator.Apply((float[])[-1, 1, -1, 1], 1, 4, Factor(identity, 4, 0), v, f, new ObsOptions { Strategy = RemovalMethods.IrrMore.Create(0.5), Recalibrate = false }, removed);
        Assert.Equal([true, false, true, false], removed);
        removed = new bool[4];
        ObsRecalibrator.Apply((float[])[-1, 1, -1, 1], 1, 4, Factor(identity, 4, 0), v, f, new ObsOptions { Strategy = RemovalMethods.IrrMore.Create(0.25), Recalibrate = false }, removed);
        Assert.Equal([true, false, true, true], removed);
        // −0.0 (column 3) ties with +0.0: put F = 0 on a conflict at column 0 too; keep 2 → −.4 (1) and the
        // earlier of the two zeros in position order (column 0).
        removed = new bool[4];
        ObsRecalibrator.Apply((float[])[-1, 1, -1, 1], 1, 4, Factor(identity, 4, 0), v, (float[])[0f, 0.4f, 0.1f, 0f], new ObsOptions { Strategy = RemovalMethods.IrrMore.Create(0.5), Recalibrate = false }, removed);
        Assert.Equal([false, false, true, true], removed);
        // fisher-only: no sign test, lowest F kept: F = [.3 .4 .1 0], keep 2 → 3 and 2 kept.
        removed = new bool[4];
        ObsRecalibrator.Apply((float[])[-1, 1, -1, 1], 1, 4, Factor(identity, 4, 0), v, f, new ObsOptions { Strategy = RemovalMethods.FisherOnly.Create(0.5), Recalibrate = false }, removed);
        Assert.Equal([true, true, false, false], removed);
    }

    [Fact]
    public void RecalibrationLowersTheReconstructionError()
    {
        int rows = 32, cols = 48, tokens = 300;
        var (h, x, w0, v, f) = Problem(rows, cols, tokens, seed: 5);
        double Error(float[] w)
        {
            // ‖(W_new − W_F) Xᵀ‖² with W_new − W_F = Δ' − Δ
            double s = 0;
            for (int t = 0; t < tokens; t++)
                for (int r = 0; r < rows; r++)
                {
                    double acc = 0;
                    for (int c = 0; c < cols; c++) acc += (w[r * cols + c] - w0[r * cols + c]) * (double)x[t * cols + c];
                    s += acc * acc;
                }
            return s;
        }
        var plain = (float[])w0.Clone();
        ObsRecalibrator.Apply(plain, rows, cols, Factor(h, cols), v, f, new ObsOptions { Recalibrate = false });
        var recalibrated = (float[])w0.Clone();
        var result = ObsRecalibrator.Apply(recalibrated, rows, cols, Factor(h, cols), v, f, new ObsOptions { BlockSize = 16 });
        Assert.True(result.Removed > 0);
        double before = Error(plain), after = Error(recalibrated);
        Assert.True(after < 0.8 * before, $"reconstruction error {before:E3} without recalibration, {after:E3} with");
    }

    [Fact]
    public void NoConflictsLeaveTheMatrixUntouched()
    {
        int rows = 8, cols = 12;
        var (h, _, w0, _, f) = Problem(rows, cols, 50, seed: 6);
        var v = w0.Select(x => x * 3f).ToArray(); // same signs everywhere
        var w = (float[])w0.Clone();
        var r = ObsRecalibrator.Apply(w, rows, cols, Factor(h, cols), v, f, new ObsOptions());
        Assert.True(r.Untouched);
        Assert.Equal(0, r.Conflicts);
        Assert.Equal(w0, w);
    }

    [Fact]
    public void AnIndefiniteHessianIsRetriedWithMoreDampingThenReported()
    {
        // H = [[1, 3], [3, 1]] has eigenvalues 4 and −2: mean diag 1, so λ must exceed 2.
        float[] h = [1, 3, 3, 1];
        var factor = ObsRecalibrator.Factor(h, 2, new ObsOptions { PercDamp = 0.01 }, out _);
        Assert.NotNull(factor);
        Assert.Equal(3, factor!.Retries);          // percdamp 0.01 → 0.1 → 1 (λ = 1: eigenvalue −1) → 10
        Assert.Equal(10, factor.PercDamp, 1e-9);
        Assert.Equal(10f, (float)factor.Lambda);
        Assert.Null(ObsRecalibrator.Factor(h, 2, new ObsOptions { PercDamp = 0.01, MaxDampingRetries = 2 }, out var failure));
        Assert.False(failure.Success);
        // percdamp 0: the first retry uses 0.01 (H_00 = −0.001, mean diag ≈ 0.5: λ = 0.005 suffices).
        var f0 = ObsRecalibrator.Factor([-0.001f, 0, 0, 1f], 2, new ObsOptions { PercDamp = 0 }, out _);
        Assert.Equal(1, f0!.Retries);
        Assert.Equal(0.01, f0.PercDamp, 1e-12);
    }

    // A strategy that removes a given mask (rows × cols), whatever the block holds: the OBS update is then checked
    // on its own against the explicit-inverse reference.
    private sealed class FixedMask(bool[] removal) : IRemovalStrategy
    {
        public string Name => "fixed";

        public System.Text.Json.Nodes.JsonObject Describe() => new() { ["method"] = Name };

        public void ChooseMask(in MaskBlock block, Span<bool> mask)
        {
            for (int p = 0; p < mask.Length; p++) mask[p] = removal[block.At(p)];
        }
    }
}
