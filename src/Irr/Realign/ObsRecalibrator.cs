using System.Numerics.Tensors;
using Irr.Tensors;

namespace Irr.Realign;

/// <summary>Options of the per-matrix identify/remove/recalibrate step.</summary>
public sealed record ObsOptions
{
    /// <summary>How each block's removal mask is chosen: <see cref="RemovalMethods.Irr"/> with s = 0 unless set.</summary>
    public IRemovalStrategy Strategy { get; init; } = RemovalMethods.Irr.Create(0);

    /// <summary>Columns per block.</summary>
    public int BlockSize { get; init; } = 128;

    /// <summary>Damping as a fraction of mean(diag H).</summary>
    public double PercDamp { get; init; } = 0.01;

    /// <summary>false: "w/o recalibration" — removed deltas become 0, the rest keep their values.</summary>
    public bool Recalibrate { get; init; } = true;

    /// <summary>Retries with 10× the damping after a failed Cholesky factorisation.</summary>
    public int MaxDampingRetries { get; init; } = 4;
}

/// <summary>The upper Cholesky factor of the damped inverse Hessian of one module input, shared by the modules that read it.</summary>
/// <param name="U">Upper-triangular U (cols × cols) with (H + λI)⁻¹ = UᵀU.</param>
/// <param name="Columns">cols.</param>
/// <param name="Dead">Columns whose H_jj was 0 (set to 1 before damping).</param>
/// <param name="Lambda">The damping λ added to the diagonal.</param>
/// <param name="PercDamp">The percdamp that produced λ (after retries).</param>
/// <param name="Retries">Failed factorisations before this one.</param>
public sealed record HessianFactor(float[] U, int Columns, bool[] Dead, double Lambda, double PercDamp, int Retries);

/// <summary>What one matrix's realignment did.</summary>
/// <param name="Parameters">rows × cols.</param>
/// <param name="Conflicts">Deltas whose sign conflicted with the safety vector, counted per block on the compensated values.</param>
/// <param name="Removed">Deltas removed.</param>
/// <param name="Error">SparseGPT's loss Σ e²/2.</param>
/// <param name="Untouched">True when nothing was removed: the matrix is exactly its input.</param>
public sealed record ObsResult(long Parameters, long Conflicts, long Removed, double Error, bool Untouched);

/// <summary>
/// IRR's per-matrix step (IRR-SPEC step 3.3): on the delta W = Δ (rows × cols), block by block of
/// columns, choose the removal mask from the current (compensated) block, zero the removed deltas and
/// spread the error over the columns not yet processed with SparseGPT's OBS update
/// (Frantar &amp; Alistarh 2023, Algorithm 1), using U, the upper Cholesky factor of H⁻¹.
/// </summary>
public static class ObsRecalibrator
{
    /// <summary>
    /// Dead inputs (H_jj = 0 → 1), damping λ = percdamp·mean(diag H), and U = chol((H + λI)⁻¹) (upper).
    /// A failed factorisation retries with 10× the damping (0.01 if percdamp is 0), up to the retry limit;
    /// the last failure is returned as null with the Cholesky result.
    /// </summary>
    /// <param name="hessian">H (cols × cols), symmetric; not modified.</param>
    /// <param name="columns">cols.</param>
    /// <param name="options">percdamp and the retry limit.</param>
    /// <param name="failure">The Cholesky outcome of the last attempt when it failed.</param>
    public static HessianFactor? Factor(ReadOnlySpan<float> hessian, int columns, ObsOptions options, out CholeskyResult failure)
    {
        int n = columns;
        var dead = new bool[n];
        var h = hessian.ToArray();
        double diagSum = 0;
        for (int j = 0; j < n; j++)
        {
            ref float d = ref h[j * n + j];
            if (d == 0f) { d = 1f; dead[j] = true; }
            diagSum += d;
        }
        double mean = diagSum / Math.Max(n, 1);
        double percdamp = options.PercDamp;
        failure = CholeskyResult.Ok;
        for (int attempt = 0; attempt <= options.MaxDampingRetries; attempt++)
        {
            if (attempt > 0) percdamp = percdamp == 0 ? 0.01 : percdamp * 10;
            float lambda = (float)(percdamp * mean);
            var u = (float[])h.Clone();
            for (int j = 0; j < n; j++) u[j * n + j] += lambda;                  // H += λI
            var r = Cholesky.InverseUpperFactor(u, n);                          // U = chol((H + λI)⁻¹), upper
            if (r.Success) return new HessianFactor(u, n, dead, lambda, percdamp, attempt);
            failure = r;
        }
        return null;
    }

    /// <summary>
    /// Realigns one matrix in place: <paramref name="w"/> holds Δ = W_F − W_A (rows × cols) on entry and
    /// the edited delta on return. <paramref name="removed"/> (rows × cols), if not empty, receives the
    /// removal mask. <paramref name="matrix"/> names the matrix for strategies that depend on it (random-at-count).
    /// </summary>
    public static ObsResult Apply(Span<float> w, int rows, int columns, HessianFactor factor, ReadOnlySpan<float> safetyVector,
        ReadOnlySpan<float> fisher, ObsOptions options, Span<bool> removed = default, TargetMatrix? matrix = null)
    {
        int n = columns, bs = Math.Max(1, options.BlockSize);
        if (factor.Columns != n) throw new ArgumentException($"The factor is {factor.Columns} wide, the matrix {n}.", nameof(factor));
        if (w.Length != (long)rows * n || safetyVector.Length != w.Length || fisher.Length != w.Length)
            throw new ArgumentException("Delta, safety vector and Fisher must all be rows × cols.");
        if (!removed.IsEmpty) removed.Clear();
        var target = matrix ?? new TargetMatrix("", 0, "", rows, columns);
        var u = factor.U;

        // Dead inputs: W[:, j] = 0.
        for (int j = 0; j < n; j++)
            if (factor.Dead[j])
                for (int r = 0; r < rows; r++) w[r * n + j] = 0f;

        long conflicts = 0, removedCount = 0;
        double error = 0;
        var mask = new bool[rows * bs];
        var e = new float[rows * bs];               // E (rows × block): the scaled errors of the block
        for (int i1 = 0; i1 < n; i1 += bs)
        {
            int i2 = Math.Min(i1 + bs, n), width = i2 - i1;
            var blockMask = mask.AsSpan(0, rows * width);
            // R: chosen from the block's current, compensated values, fixed for the block.
            conflicts += ChooseMask(new MaskBlock(target, w, safetyVector, fisher, i1, width), options.Strategy, blockMask);
            // Column by column inside the block. Each row's sequence depends only on that row, so rows
            // are processed independently (row-major: a row's block stays in L1) and split over threads.
            var (removedHere, errorHere) = BlockRows(w, rows, n, i1, width, u, blockMask, e, removed, options.Recalibrate);
            removedCount += removedHere;
            error += errorHere;
            var err = e.AsSpan(0, rows * width);
            // W[:, i2:] −= E · U[i1:i2, i2:]  (lazy update of the remaining columns)
            if (options.Recalibrate && i2 < n)
                Gemm.Compute(Transpose.No, Transpose.No, rows, n - i2, width, -1f, err, width, u.AsSpan(i1 * n + i2), n, 1f, w[i2..], n);
        }
        return new ObsResult((long)rows * n, conflicts, removedCount, error, removedCount == 0);
    }

    /// <summary>
    /// Identification only (a dry run): the conflicts and the removals the mask rule chooses on the
    /// uncompensated delta, block by block, without a Hessian.
    /// </summary>
    public static (long Conflicts, long Removed) Identify(ReadOnlySpan<float> w, int rows, int columns, ReadOnlySpan<float> safetyVector,
        ReadOnlySpan<float> fisher, ObsOptions options, TargetMatrix? matrix = null)
    {
        var target = matrix ?? new TargetMatrix("", 0, "", rows, columns);
        int bs = Math.Max(1, options.BlockSize);
        var mask = new bool[rows * bs];
        long conflicts = 0, removed = 0;
        for (int i1 = 0; i1 < columns; i1 += bs)
        {
            int width = Math.Min(bs, columns - i1);
            var blockMask = mask.AsSpan(0, rows * width);
            conflicts += ChooseMask(new MaskBlock(target, w, safetyVector, fisher, i1, width), options.Strategy, blockMask);
            foreach (bool b in blockMask) if (b) removed++;
        }
        return (conflicts, removed);
    }

    // For every row r and column i of the block, in column order:
    //   q = W[r, i] if kept, 0 if removed;  e = (W[r, i] − q) / U_ii;  W[r, i] = q;  W[r, i+1:i2] −= e · U[i, i+1:i2]
    // E[r, i − i1] = e. Returns the removals and Σ e²/2.
    private static unsafe (long Removed, double Error) BlockRows(Span<float> w, int rows, int n, int i1, int width, float[] u,
        ReadOnlySpan<bool> blockMask, float[] e, Span<bool> removed, bool recalibrate)
    {
        fixed (float* pw = w)
        fixed (bool* pm = blockMask, pr = removed)
        {
            float* wp = pw;
            bool* mp = pm, rp = pr;
            bool track = !removed.IsEmpty;
            var partial = new (long Removed, double Error)[ThreadTeam.Shared.Size];
            int threads = (long)rows * width * width < 1 << 20 ? 1 : ThreadTeam.DefaultThreads;
            ThreadTeam.Shared.Run(threads, (tid, count) =>
            {
                var (r0, r1) = ThreadTeam.Split(rows, count, tid);
                long removedCount = 0;
                double error = 0;
                for (int r = r0; r < r1; r++)
                {
                    var row = new Span<float>(wp + (long)r * n + i1, width);
                    var err = e.AsSpan(r * width, width);
                    for (int c = 0; c < width; c++)
                    {
                        if (!mp[r * width + c]) { err[c] = 0f; continue; }
                        int i = i1 + c;
                        float er = row[c] / u[(long)i * n + i];
                        err[c] = er;
                        removedCount++;
                        error += 0.5 * er * (double)er;                                  // Σ e²/2
                        if (track) rp[(long)r * n + i] = true;
                        row[c] = 0f;                                                     // W[r, i] = q
                        if (recalibrate && c + 1 < width)                                // W[r, i+1:i2] −= e·U[i, i+1:i2]
                            TensorPrimitives.FusedMultiplyAdd(u.AsSpan((int)((long)i * n + i + 1), width - c - 1), -er, row[(c + 1)..], row[(c + 1)..]);
                    }
                }
                partial[tid] = (removedCount, error);
            });
            return (partial.Sum(p => p.Removed), partial.Sum(p => p.Error));
        }
    }

    // sign(W) ≠ sign(v), three-valued with sign(±0) = 0
    private static bool Conflict(float w, float v) => (w > 0f) != (v > 0f) || (w < 0f) != (v < 0f);

    // The block's removal mask R (rows × width): the conflict set C, then the strategy's choice. Returns |C| of the block.
    private static long ChooseMask(in MaskBlock block, IRemovalStrategy strategy, Span<bool> mask)
    {
        long conflicts = 0;
        int n = block.Matrix.Columns, width = block.Width;
        for (int r = 0; r < block.Matrix.Rows; r++)
        {
            var wr = block.Delta.Slice(r * n + block.Start, width);
            var vr = block.SafetyVector.Slice(r * n + block.Start, width);
            var mr = mask.Slice(r * width, width);
            for (int c = 0; c < width; c++)
            {
                bool conflict = Conflict(wr[c], vr[c]);
                mr[c] = conflict;
                if (conflict) conflicts++;
            }
        }
        strategy.ChooseMask(block, mask);
        return conflicts;
    }
}
