namespace Irr.Realign.Baselines;

/// <summary>
/// Antidote's one-shot pruning step (Huang et al., "Antidote: Post-fine-tuning Safety Alignment for Large Language Models
/// against Harmful Fine-tuning", arXiv 2408.09600; code git-disl/Antidote, utils.py <c>prune_wanda_outlier</c>): the Wanda
/// score of every entry of a linear weight on the harmful ("re-alignment") data,
/// <code>S_ij = |W_ij| · ‖X_j‖₂      (X_j: input feature j of the module over every token of the data)</code>
/// and, per output row, the entries of the highest score set to zero: the released code sorts each row's scores in
/// ascending order (a stable sort), keeps the first ⌊cols·(1 − ρ)⌋ and prunes the rest, ρ its <c>dense_ratio</c> (the
/// paper's mask ratio).
/// </summary>
public static class Antidote
{
    /// <summary>Entries pruned per row of <paramref name="columns"/>: columns − ⌊columns·(1 − ρ)⌋, the released code's count (in double).</summary>
    public static int PrunedPerRow(int columns, double ratio) => columns - (int)(columns * (1.0 - ratio));

    /// <summary>
    /// Marks in <paramref name="pruned"/> [rows, cols] the <see cref="PrunedPerRow"/> entries of each row of
    /// <paramref name="weight"/> [rows, cols] with the highest Wanda score |W_ij|·<paramref name="inputNorms"/>[j] (in double);
    /// of equal scores the later column is pruned first (the stable ascending sort). Returns the count marked.
    /// </summary>
    public static long Mask(ReadOnlySpan<float> weight, int rows, int cols, ReadOnlySpan<double> inputNorms, double ratio, Span<bool> pruned)
    {
        int prune = PrunedPerRow(cols, ratio), keep = cols - prune;
        pruned.Clear();
        if (prune == 0) return 0;
        var score = new double[cols];                                          // S_i·: [cols]
        var order = new int[cols];                                             // column indices by ascending S, ties by index
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) { score[j] = Math.Abs(weight[i * cols + j]) * inputNorms[j]; order[j] = j; }
            Array.Sort(order, (a, b) => score[a] != score[b] ? score[a].CompareTo(score[b]) : a.CompareTo(b));
            for (int k = keep; k < cols; k++) pruned[i * cols + order[k]] = true;
        }
        return (long)rows * prune;
    }

    /// <summary>Sets the marked entries to zero; returns the Frobenius norm of the values removed (in double).</summary>
    public static double Prune(Span<float> weight, ReadOnlySpan<bool> pruned)
    {
        double sum = 0;
        for (int i = 0; i < weight.Length; i++)
        {
            if (!pruned[i]) continue;
            sum += (double)weight[i] * weight[i];
            weight[i] = 0;
        }
        return Math.Sqrt(sum);
    }

    /// <summary>‖X_j‖₂ per column from the accumulated sums of squares Σ_t x_tj² (in place).</summary>
    public static double[] Norms(double[] sumsOfSquares)
    {
        for (int j = 0; j < sumsOfSquares.Length; j++) sumsOfSquares[j] = Math.Sqrt(sumsOfSquares[j]);
        return sumsOfSquares;
    }

    /// <summary>Adds Σ_t x_tj² over the rows of <paramref name="input"/> [rows, cols] to <paramref name="sums"/> [cols], in double.</summary>
    public static void AddSquares(ReadOnlySpan<float> input, int rows, int cols, Span<double> sums)
    {
        for (int t = 0; t < rows; t++)
            for (int j = 0; j < cols; j++) { double x = input[t * cols + j]; sums[j] += x * x; }
    }

    /// <summary>
    /// Adds Σ_t u_tk² to <paramref name="sums"/> [r], u_t = A·x_t the input of a LoRA module's B (A: [r, cols], x: the rows of
    /// <paramref name="input"/> [rows, cols]); u in double.
    /// </summary>
    public static void AddProjectedSquares(ReadOnlySpan<float> input, int rows, int cols, ReadOnlySpan<float> a, int r, Span<double> sums)
    {
        for (int t = 0; t < rows; t++)
        {
            var x = input.Slice(t * cols, cols);
            for (int k = 0; k < r; k++)
            {
                double u = 0;
                var ak = a.Slice(k * cols, cols);
                for (int j = 0; j < cols; j++) u += (double)ak[j] * x[j];
                sums[k] += u * u;
            }
        }
    }
}
