using System.Text.Json.Nodes;

namespace Irr.Realign;

/// <summary>A target matrix of realignment: its full weight name, layer, module and shape (rows × cols = out × in).</summary>
/// <param name="Name">The full Hugging Face weight name, e.g. <c>model.layers.3.self_attn.q_proj.weight</c>.</param>
/// <param name="Layer">The decoder layer.</param>
/// <param name="Module">q_proj …</param>
/// <param name="Rows">out_features.</param>
/// <param name="Columns">in_features.</param>
public sealed record TargetMatrix(string Name, int Layer, string Module, int Rows, int Columns);

/// <summary>
/// One block of columns <c>[Start, Start + Width)</c> of a target matrix at the moment its removal mask is chosen
/// (IRR-SPEC step 3.3): the delta as it is now (compensation from earlier blocks included), the safety vector and
/// the Fisher, all rows × cols row-major.
/// </summary>
public readonly ref struct MaskBlock
{
    /// <summary>A block view.</summary>
    public MaskBlock(TargetMatrix matrix, ReadOnlySpan<float> delta, ReadOnlySpan<float> safetyVector, ReadOnlySpan<float> fisher, int start, int width)
    {
        Matrix = matrix;
        Delta = delta;
        SafetyVector = safetyVector;
        Fisher = fisher;
        Start = start;
        Width = width;
    }

    /// <summary>The matrix.</summary>
    public TargetMatrix Matrix { get; }

    /// <summary>W = Δ of the whole matrix, current values (rows × cols).</summary>
    public ReadOnlySpan<float> Delta { get; }

    /// <summary>v of the whole matrix (rows × cols).</summary>
    public ReadOnlySpan<float> SafetyVector { get; }

    /// <summary>F of the whole matrix (rows × cols).</summary>
    public ReadOnlySpan<float> Fisher { get; }

    /// <summary>The block's first column, i1.</summary>
    public int Start { get; }

    /// <summary>The block's width, i2 − i1.</summary>
    public int Width { get; }

    /// <summary>The element of the whole matrix at block position <paramref name="p"/> (row-major in rows × width).</summary>
    public int At(int p) => p / Width * Matrix.Columns + Start + p % Width;
}

/// <summary>
/// How the removal mask R of a block is chosen: the one place where IRR and its variants differ, as small
/// strategy types in mergekit's manner. The recalibration around it (<see cref="ObsRecalibrator"/>) is shared.
/// </summary>
public interface IRemovalStrategy
{
    /// <summary>The method's name as the command line and the report give it: irr, irr-more, fisher-only, random-at-count.</summary>
    string Name { get; }

    /// <summary>What the report records about the method (name, s, seed …).</summary>
    JsonObject Describe();

    /// <summary>
    /// Chooses the block's removal mask. On entry <paramref name="mask"/> (rows × width, row-major) holds the conflict
    /// set C = {sign(W) ≠ sign(v)} of the block; on return it holds R (true = remove).
    /// </summary>
    void ChooseMask(in MaskBlock block, Span<bool> mask);
}

/// <summary>
/// The three Fisher-ranked rules of IRR-SPEC step 3.3 (<see cref="RemovalMethods"/>' irr, irr-more and fisher-only):
/// candidates are scored, the <c>⌊count·s⌋</c> lowest are kept (stable: row-major position breaks ties) and the other
/// candidates are removed.
/// </summary>
/// <param name="name">The method's name (irr, irr-more, fisher-only).</param>
/// <param name="sparsity">s in [0, 1]: the fraction of candidates kept.</param>
/// <param name="conflictsOnly">Whether only the conflicts are candidates (irr), or every entry of the block.</param>
/// <param name="agreeingSign">The score of a non-conflicting candidate is this times its Fisher (−1 for irr-more, 1 for fisher-only); a conflict scores its Fisher.</param>
public sealed class FisherRankedStrategy(string name, double sparsity, bool conflictsOnly, float agreeingSign) : IRemovalStrategy
{
    /// <summary>s: the fraction of candidates kept, lowest score first.</summary>
    public double Sparsity { get; } = sparsity is >= 0 and <= 1 ? sparsity : throw new IrrException($"sparsity must be between 0 and 1, not {sparsity}");

    /// <inheritdoc/>
    public string Name => name;

    /// <inheritdoc/>
    public JsonObject Describe() => new() { ["method"] = Name, ["sparsity"] = Sparsity };

    /// <inheritdoc/>
    public void ChooseMask(in MaskBlock block, Span<bool> mask)
    {
        long candidates = conflictsOnly ? mask.Count(true) : mask.Length;
        long keep = (long)(candidates * Sparsity);                          // ⌊count·s⌋, a double product truncated
        if (keep == 0)
        {
            if (!conflictsOnly) mask.Fill(true);                            // every candidate removed (irr: R = C as it is)
            return;
        }
        var positions = new int[candidates];
        var keys = new float[candidates];
        int k = 0, width = block.Width;
        for (int r = 0, p = 0; r < block.Matrix.Rows; r++)
        {
            var fisher = block.Fisher.Slice(r * block.Matrix.Columns + block.Start, width);   // F[r, i1:i2]
            for (int c = 0; c < width; c++, p++)
            {
                bool conflict = mask[p];
                if (conflictsOnly && !conflict) continue;
                positions[k] = p;
                keys[k++] = conflict ? fisher[c] : agreeingSign * fisher[c];
            }
        }
        mask.Clear();
        foreach (int p in LowestRemainder(keys, positions, keep)) mask[p] = true;
    }

    /// <summary>
    /// The k-th smallest value (0-based) of <paramref name="values"/>, which it reorders: the value sorting would put at
    /// index k, found by quickselect (median-of-three pivot, three-way partition, so that many equal keys such as a
    /// zero Fisher stay linear) in O(n) instead of a sort's O(n log n).
    /// </summary>
    internal static float SelectKth(Span<float> values, int k)
    {
        if ((uint)k >= (uint)values.Length) throw new ArgumentOutOfRangeException(nameof(k));
        int lo = 0, hi = values.Length - 1;
        while (lo < hi)
        {
            float a = values[lo], b = values[(lo + hi) >>> 1], c = values[hi];
            float pivot = Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));   // median of three
            int lt = lo, i = lo, gt = hi;                                           // [lo, lt) < pivot, [lt, i) = pivot, (gt, hi] > pivot
            while (i <= gt)
            {
                float v = values[i];
                if (v < pivot) { values[i] = values[lt]; values[lt++] = v; i++; }
                else if (v > pivot) { values[i] = values[gt]; values[gt--] = v; }
                else i++;
            }
            if (k < lt) hi = lt - 1;
            else if (k > gt) lo = gt + 1;
            else return pivot;
        }
        return values[lo];
    }

    // Positions not among the `keep` lowest keys, where equal keys are ordered by position (positions ascend).
    private static IEnumerable<int> LowestRemainder(float[] keys, int[] positions, long keep)
    {
        if (keep >= keys.Length) yield break;
        if (keep <= 0)
        {
            foreach (int p in positions) yield return p;
            yield break;
        }
        float threshold = SelectKth((float[])keys.Clone(), (int)(keep - 1)); // the keep-th lowest key, as sorting would give it
        long below = 0;
        foreach (float k in keys) if (k < threshold) below++;
        long tiesKept = keep - below; // the first `tiesKept` keys equal to the threshold, in position order, are kept
        for (int i = 0; i < keys.Length; i++)
        {
            float k = keys[i];
            if (k < threshold) continue;
            if (k == threshold && tiesKept > 0) { tiesKept--; continue; }
            yield return positions[i];
        }
    }
}

/// <summary>
/// <c>random-at-count</c>, the random-removal control (a baseline, not IRR): for every target matrix, remove exactly
/// <see cref="Counts"/>[name] deltas chosen uniformly at random among all rows × cols entries (no sign test, no
/// Fisher); recalibration is IRR's. Given the per-matrix <c>removed</c> counts of an IRR run it removes as much as
/// IRR, only not where IRR does. A matrix's mask is drawn once, by a partial Fisher–Yates shuffle from
/// <c>new Random(seed · 1000003 + layer · 16 + module index)</c> (the index among q, k, v, o, gate, up, down; Phi-3's
/// qkv_proj and gate_up_proj count as q and gate), so it depends on the seed and the matrix only.
/// </summary>
/// <param name="Counts">Deltas to remove, by full weight name (a matrix not listed keeps every delta).</param>
/// <param name="Seed">The seed of the masks.</param>
public sealed record RandomAtCountStrategy(IReadOnlyDictionary<string, long> Counts, int Seed) : IRemovalStrategy
{
    private (string Name, bool[] Mask)? current;

    // A module's index in the seed: its place among the seven separate projections (Phi-3's fused qkv_proj and
    // gate_up_proj take their first part's), so masks drawn before the families were added stay the same.
    private static readonly string[] SeedModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <inheritdoc/>
    public string Name => RemovalMethods.RandomAtCount.Name;

    /// <inheritdoc/>
    public JsonObject Describe() => new() { ["method"] = Name, ["seed"] = Seed, ["removed"] = Counts.Values.Sum() };

    /// <summary>The random mask (rows × cols, true = remove) of one target matrix.</summary>
    /// <exception cref="IrrException">The count is negative or exceeds the matrix.</exception>
    public bool[] Mask(TargetMatrix matrix)
    {
        long count = Counts.GetValueOrDefault(matrix.Name);
        long n = (long)matrix.Rows * matrix.Columns;
        if (count < 0 || count > n) throw new IrrException($"random removal: {count} deltas asked of '{matrix.Name}', which has {n}");
        var mask = new bool[n];
        int moduleIndex = Array.IndexOf(SeedModules, matrix.Module switch { "qkv_proj" => "q_proj", "gate_up_proj" => "gate_proj", var m => m });
        var rng = new Random(unchecked(Seed * 1000003 + matrix.Layer * 16 + moduleIndex));
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = 0; i < count; i++)
        {
            int j = i + rng.Next((int)(n - i));
            (order[i], order[j]) = (order[j], order[i]);
            mask[order[i]] = true;
        }
        return mask;
    }

    /// <inheritdoc/>
    public void ChooseMask(in MaskBlock block, Span<bool> mask)
    {
        var m = block.Matrix;
        if (current is not { } c || c.Name != m.Name) current = c = (m.Name, Mask(m));
        for (int r = 0; r < m.Rows; r++)
            c.Mask.AsSpan(r * m.Columns + block.Start, block.Width).CopyTo(mask.Slice(r * block.Width, block.Width));
    }
}
