namespace Irr.Realign.Baselines;

/// <summary>
/// The arithmetic of Safe LoRA (Hsu, Tsai, Lin, Chen, Yu, Huang: "Safe LoRA: the Silver Lining of Reducing Safety Risks
/// when Fine-tuning Large Language Models", NeurIPS 2024), one LoRA target matrix at a time.
/// <para>
/// Shapes (Hugging Face layout, <c>y = x·Wᵀ</c>): the safety-vector matrix <c>V</c> is out × in (<c>θ_A − θ_U</c>, from
/// <c>irr safety-vector</c>), LoRA's <c>A</c> is r × in and <c>B</c> out × r, the update is <c>ΔW = s·B·A</c> (s = α/r, or
/// α/√r with rsLoRA). The alignment matrix is <c>C = V·Vᵀ / ‖V‖_F</c> (out × out); a selected matrix is projected as
/// <c>B' = C·B</c> (rank and <c>A</c> unchanged, so <c>ΔW' = C·ΔW</c>). The similarity that selects the matrices is the
/// cosine of <c>vec(C·ΔW)</c> and <c>vec(ΔW)</c>: <c>⟨C·ΔW, ΔW⟩_F / (‖C·ΔW‖_F·‖ΔW‖_F)</c>.
/// </para>
/// Everything is computed in float64. <c>C</c> is never formed by the job: <c>C·B = V·(Vᵀ·B) / ‖V‖_F</c> costs
/// out·in·r instead of out²·in and needs no out × out buffer (<see cref="Projection"/> forms it for callers and tests).
/// </summary>
public static class SafeLora
{
    /// <summary>
    /// <c>C = V·Vᵀ / ‖V‖_F</c> (out × out, row-major) for <c>V</c> (out × in, row-major). <c>V = 0</c> gives <c>C = 0</c>
    /// (the released code would divide 0 by 0). Costs out²·in: for small matrices and for checking <see cref="ProjectB"/>.
    /// </summary>
    public static double[] Projection(ReadOnlySpan<float> v, int rows, int cols)
    {
        CheckLength(v.Length, rows, cols, "V");
        double norm = FrobeniusNorm(v);
        var c = RowGram(v, rows, cols);
        for (int i = 0; i < c.Length; i++) c[i] = norm == 0 ? 0 : c[i] / norm;
        return c;
    }

    /// <summary>
    /// <c>C·B = V·(Vᵀ·B) / ‖V‖_F</c> (out × r, row-major) for <c>V</c> (out × in) and <c>B</c> (out × r), in float64
    /// without forming <c>C</c>. <c>V = 0</c> gives 0.
    /// </summary>
    public static double[] ProjectB(float[] v, int rows, int cols, float[] b, int rank)
    {
        CheckLength(v.Length, rows, cols, "V");
        CheckLength(b.Length, rows, rank, "B");
        double norm = FrobeniusNorm(v);
        var result = new double[(long)rows * rank];
        if (norm == 0) return result;
        // T = Vᵀ·B (in × r), by chunks of V's columns so that rows of V are read in order.
        var t = new double[(long)cols * rank];
        const int chunk = 256;
        Parallel.For(0, (cols + chunk - 1) / chunk, c =>
        {
            int j0 = c * chunk, j1 = Math.Min(cols, j0 + chunk);
            for (int i = 0; i < rows; i++)
            {
                int vRow = i * cols, bRow = i * rank;
                for (int j = j0; j < j1; j++)
                {
                    double vij = v[vRow + j];
                    if (vij == 0) continue;
                    long tRow = (long)j * rank;
                    for (int k = 0; k < rank; k++) t[tRow + k] += vij * b[bRow + k];
                }
            }
        });
        // C·B = V·T / ‖V‖_F.
        Parallel.For(0, rows, i =>
        {
            var sums = new double[rank];
            int vRow = i * cols;
            for (int j = 0; j < cols; j++)
            {
                double vij = v[vRow + j];
                if (vij == 0) continue;
                long tRow = (long)j * rank;
                for (int k = 0; k < rank; k++) sums[k] += vij * t[tRow + k];
            }
            for (int k = 0; k < rank; k++) result[(long)i * rank + k] = sums[k] / norm;
        });
        return result;
    }

    /// <summary>
    /// The cosine between <c>vec(C·ΔW)</c> and <c>vec(ΔW)</c> with <c>ΔW = s·B·A</c>, given <paramref name="projectedB"/>
    /// <c>= C·B</c> (out × r), <c>B</c> (out × r) and <c>A</c> (r × in). Computed through the r × r Gram matrix
    /// <c>G = A·Aᵀ</c>: <c>⟨C·B·A, B·A⟩_F = tr((C·B)ᵀ·B·G)</c>, <c>‖B·A‖²_F = tr(Bᵀ·B·G)</c>, <c>‖C·B·A‖²_F = tr((C·B)ᵀ·C·B·G)</c>;
    /// the scale s cancels (for s ≠ 0).
    /// Defined cases: <c>ΔW = 0</c> (s = 0, or <c>B·A = 0</c>) has similarity 1 (nothing to project, so it is never
    /// selected by a threshold ≤ 1); <c>ΔW ≠ 0</c> with <c>C·ΔW = 0</c> (the update is orthogonal to the alignment
    /// subspace, or <c>V = 0</c>) has similarity 0. The result is clamped to [−1, 1].
    /// </summary>
    public static double Similarity(ReadOnlySpan<double> projectedB, ReadOnlySpan<float> b, ReadOnlySpan<float> a, int rows, int rank, int cols, double scale)
    {
        CheckLength(projectedB.Length, rows, rank, "C·B");
        CheckLength(b.Length, rows, rank, "B");
        CheckLength(a.Length, rank, cols, "A");
        if (scale == 0) return 1;
        var g = RowGram(a, rank, cols);
        double inner = 0, deltaSquared = 0, projectedSquared = 0;
        for (int k = 0; k < rank; k++)
            for (int l = 0; l < rank; l++)
            {
                double pb = 0, bb = 0, pp = 0;
                for (int i = 0; i < rows; i++)
                {
                    double pk = projectedB[i * rank + k], pl = projectedB[i * rank + l];
                    double bk = b[i * rank + k], bl = b[i * rank + l];
                    pb += pk * bl;
                    bb += bk * bl;
                    pp += pk * pl;
                }
                double gkl = g[k * rank + l];
                inner += pb * gkl;
                deltaSquared += bb * gkl;
                projectedSquared += pp * gkl;
            }
        if (deltaSquared <= 0) return 1;
        if (projectedSquared <= 0) return 0;
        return Math.Clamp(inner / Math.Sqrt(deltaSquared * projectedSquared), -1, 1);
    }

    /// <summary>
    /// The threshold rule: matrix i is projected when <c>similarities[i] &lt; τ</c> (strictly below; the released code
    /// projects at <c>≤ τ</c>).
    /// </summary>
    public static bool[] SelectBelow(IReadOnlyList<double> similarities, double threshold) =>
        similarities.Select(s => s < threshold).ToArray();

    /// <summary>
    /// The count rule: the <paramref name="count"/> matrices with the lowest similarity are projected (all of them when
    /// <paramref name="count"/> ≥ their number, none for 0). Ties are broken by matrix order: the earlier matrix first.
    /// </summary>
    public static bool[] SelectLowest(IReadOnlyList<double> similarities, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var selected = new bool[similarities.Count];
        foreach (int i in Enumerable.Range(0, similarities.Count).OrderBy(i => similarities[i]).ThenBy(i => i).Take(count))
            selected[i] = true;
        return selected;
    }

    // M·Mᵀ (rows × rows, symmetric) in float64 for M (rows × cols).
    private static double[] RowGram(ReadOnlySpan<float> m, int rows, int cols)
    {
        var g = new double[(long)rows * rows];
        for (int i = 0; i < rows; i++)
            for (int k = 0; k <= i; k++)
            {
                double sum = 0;
                var mi = m.Slice(i * cols, cols);
                var mk = m.Slice(k * cols, cols);
                for (int j = 0; j < cols; j++) sum += (double)mi[j] * mk[j];
                g[(long)i * rows + k] = g[(long)k * rows + i] = sum;
            }
        return g;
    }

    private static double FrobeniusNorm(ReadOnlySpan<float> v)
    {
        double sum = 0;
        foreach (float x in v) sum += (double)x * x;
        return Math.Sqrt(sum);
    }

    private static void CheckLength(int length, int rows, int cols, string what)
    {
        if (length != (long)rows * cols)
            throw new ArgumentException($"{what} has {length} elements, not {rows}×{cols}.");
    }
}
