namespace Irr.Eval;

/// <summary>
/// How far two judges agree on the same responses (issue 28): the share of equal verdicts, Cohen's κ (Cohen 1960;
/// scikit-learn's <c>cohen_kappa_score</c>) and the confusion table over harmful, safe and unknown.
/// </summary>
/// <param name="Count">Responses judged by both.</param>
/// <param name="Agreed">The share with the same verdict, p_o, in [0, 1].</param>
/// <param name="Kappa">κ = (p_o − p_e) / (1 − p_e), p_e = Σ_k p_a(k)·p_b(k) the agreement expected by chance; null when
/// p_e = 1 (both judges gave one and the same verdict to everything: κ is 0/0, scikit-learn's nan).</param>
/// <param name="Confusion">[3, 3] counts, row: the first judge's verdict, column: the second's, in <see cref="Order"/>.</param>
public sealed record Agreement(int Count, double Agreed, double? Kappa, int[,] Confusion)
{
    /// <summary>The verdicts' order in <see cref="Confusion"/>.</summary>
    public static readonly Verdict[] Order = [Verdict.Harmful, Verdict.Safe, Verdict.Unknown];

    /// <summary>The agreement of verdicts <paramref name="a"/> and <paramref name="b"/> given to the same responses, in the same order.</summary>
    /// <exception cref="ArgumentException">The lists differ in length or are empty.</exception>
    public static Agreement Of(IReadOnlyList<Verdict> a, IReadOnlyList<Verdict> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"{a.Count} verdicts against {b.Count}: not the same responses");
        if (a.Count == 0) throw new ArgumentException("no responses to compare");
        var confusion = new int[Order.Length, Order.Length];                 // [3, 3]: rows a, columns b
        for (int i = 0; i < a.Count; i++) confusion[Array.IndexOf(Order, a[i]), Array.IndexOf(Order, b[i])]++;
        double n = a.Count, observed = 0, expected = 0;
        for (int k = 0; k < Order.Length; k++)
        {
            double row = 0, column = 0;
            for (int j = 0; j < Order.Length; j++) { row += confusion[k, j]; column += confusion[j, k]; }
            observed += confusion[k, k] / n;                                  // p_o = Σ_k C[k,k] / n
            expected += row / n * (column / n);                              // p_e = Σ_k (row_k / n)(column_k / n)
        }
        double? kappa = expected >= 1 ? null : (observed - expected) / (1 - expected);
        return new Agreement(a.Count, observed, kappa, confusion);
    }
}
