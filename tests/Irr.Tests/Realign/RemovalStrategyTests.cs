using Irr.IO;
using Irr.Realign;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>Every removal strategy through the one interface, <see cref="IRemovalStrategy.ChooseMask"/>, against IRR-SPEC's rules written naively.</summary>
public class RemovalStrategyTests
{
    // A block of a rows × cols matrix with conflicts and Fisher values (seeded; Fisher drawn from few values so ties happen).
    private static (TargetMatrix Matrix, float[] W, float[] V, float[] F) Problem(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        float[] Draw(Func<float> f) => Enumerable.Range(0, rows * cols).Select(_ => f()).ToArray();
        var w = Draw(() => rng.Next(5) == 0 ? 0f : (float)(rng.NextDouble() - 0.5));
        var v = Draw(() => (float)(rng.NextDouble() - 0.5));
        var f = Draw(() => rng.Next(6) / 4f);
        return (new TargetMatrix("model.layers.1.self_attn.q_proj.weight", 1, "q_proj", rows, cols), w, v, f);
    }

    // IRR-SPEC step 3.3 written out: candidates in row-major order, scored; the ⌊count·s⌋ lowest are kept
    // (ties by position, LINQ's OrderBy being stable), the other candidates removed.
    internal static bool[] Naive(string method, double s, float[] w, float[] v, float[] f, int rows, int cols, int start, int width)
    {
        var candidates = new List<(int P, float Key)>();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < width; c++)
            {
                int at = r * cols + start + c, p = r * width + c;
                bool conflict = Math.Sign(w[at]) != Math.Sign(v[at]);
                if (method == "irr" && conflict) candidates.Add((p, f[at]));
                if (method == "irr-more") candidates.Add((p, conflict ? f[at] : -f[at]));
                if (method == "fisher-only") candidates.Add((p, f[at]));
            }
        long keep = (long)(candidates.Count * s);
        var kept = candidates.OrderBy(x => x.Key).Take((int)keep).Select(x => x.P).ToHashSet();
        var removed = new bool[rows * width];
        foreach (var (p, _) in candidates) if (!kept.Contains(p)) removed[p] = true;
        return removed;
    }

    [Theory]
    [InlineData("irr", 0.0)]
    [InlineData("irr", 0.3)]
    [InlineData("irr", 0.75)]
    [InlineData("irr", 1.0)]
    [InlineData("irr-more", 0.0)]
    [InlineData("irr-more", 0.5)]
    [InlineData("irr-more", 0.9)]
    [InlineData("fisher-only", 0.25)]
    [InlineData("fisher-only", 0.6)]
    public void FisherRankedStrategiesFollowTheSpecsRule(string method, double s)
    {
        int rows = 7, cols = 19;
        var (matrix, w, v, f) = Problem(rows, cols, seed: method.Length * 31 + (int)(s * 100));
        IRemovalStrategy strategy = RemovalMethods.Get(method).Create(s);
        Assert.Equal(method, strategy.Name);
        foreach (var (start, width) in new[] { (0, 8), (8, 8), (16, 3) })
        {
            var mask = new bool[rows * width];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < width; c++)
                    mask[r * width + c] = Math.Sign(w[r * cols + start + c]) != Math.Sign(v[r * cols + start + c]); // C on entry
            strategy.ChooseMask(new MaskBlock(matrix, w, v, f, start, width), mask);
            Assert.Equal(Naive(method, s, w, v, f, rows, cols, start, width), mask);
        }
    }

    [Fact]
    public void HandWorkedBlockOfOneRow()
    {
        // W = [1, −1, 2, −2, 0], v = [−1, −1, −1, 1, 1]: conflicts at 0, 2, 3 and 4 (a zero next to a non-zero conflicts).
        float[] w = [1, -1, 2, -2, 0], v = [-1, -1, -1, 1, 1], f = [0.5f, 9, 0.1f, 0.5f, 0.3f];
        var matrix = new TargetMatrix("m", 0, "q_proj", 1, 5);
        bool[] Choose(IRemovalStrategy strategy)
        {
            bool[] mask = [true, false, true, true, true];
            strategy.ChooseMask(new MaskBlock(matrix, w, v, f, 0, 5), mask);
            return mask;
        }
        Assert.Equal([true, false, true, true, true], Choose(RemovalMethods.Irr.Create(0)));       // s = 0: every conflict
        // s = 0.5: ⌊4·0.5⌋ = 2 kept, lowest Fisher: 0.1 (at 2), 0.3 (at 4); removed 0 and 3.
        Assert.Equal([true, false, false, true, false], Choose(RemovalMethods.Irr.Create(0.5)));
        // irr-more, s = 0.4: scores [0.5, −9, 0.1, 0.5, 0.3]; ⌊5·0.4⌋ = 2 kept: −9 (at 1), 0.1 (at 2).
        Assert.Equal([true, false, false, true, true], Choose(RemovalMethods.IrrMore.Create(0.4)));
        // fisher-only, s = 0.6: ⌊5·0.6⌋ = 3 kept: 0.1, 0.3 and the first 0.5 (at 0, by position).
        Assert.Equal([false, true, false, true, false], Choose(RemovalMethods.FisherOnly.Create(0.6)));
    }

    [Fact]
    public void RandomAtCountRemovesItsCountPerMatrixWhateverTheBlocks()
    {
        int rows = 6, cols = 20;
        var (matrix, w, v, f) = Problem(rows, cols, seed: 4);
        var strategy = new RandomAtCountStrategy(new Dictionary<string, long> { [matrix.Name] = 33 }, Seed: 5);
        var full = strategy.Mask(matrix);
        Assert.Equal(33, full.Count(b => b));
        long removed = 0;
        foreach (var (start, width) in new[] { (0, 7), (7, 7), (14, 6) })
        {
            var mask = new bool[rows * width];
            Array.Fill(mask, true); // the conflicts on entry do not matter
            ((IRemovalStrategy)strategy).ChooseMask(new MaskBlock(matrix, w, v, f, start, width), mask);
            for (int p = 0; p < mask.Length; p++) Assert.Equal(full[p / width * cols + start + p % width], mask[p]);
            removed += mask.Count(b => b);
        }
        Assert.Equal(33, removed);
        Assert.NotEqual(full, new RandomAtCountStrategy(strategy.Counts, Seed: 6).Mask(matrix));
        Assert.Equal("random-at-count", strategy.Name);
    }

    [Fact]
    public void RandomAtCountReadsTheCountsOfAnIrrReport()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["irr-report.json"], """
            {"layers": [{"layer": 0, "modules": [{"module": "q_proj", "removed": 12}, {"module": "v_proj", "removed": 0}]},
                        {"layer": 1, "modules": [{"module": "q_proj", "removed": 7}]}]}
            """);
        var counts = RealignReport.ReadRemovalCounts(dir["irr-report.json"]);
        Assert.Equal(12, counts[ModelConfig.LinearWeightName(0, "q_proj")]);
        Assert.Equal(0, counts[ModelConfig.LinearWeightName(0, "v_proj")]);
        Assert.Equal(7, counts[ModelConfig.LinearWeightName(1, "q_proj")]);
        File.WriteAllText(dir["bad.json"], """{"layers": [{"layer": 0}]}""");
        Assert.Contains("bad.json", Assert.Throws<IrrException>(() => RealignReport.ReadRemovalCounts(dir["bad.json"])).Message);
    }

    [Fact]
    public void UnknownMethodsAndSparsitiesOutsideTheUnitIntervalAreRefused()
    {
        Assert.Contains("method must be", Assert.Throws<IrrException>(() => RemovalMethods.Get("magic").Create(0)).Message);
        Assert.Contains("sparsity must be between 0 and 1", Assert.Throws<IrrException>(() => RemovalMethods.Irr.Create(1.5)).Message);
        Assert.Contains("sparsity must be between 0 and 1", Assert.Throws<IrrException>(() => RemovalMethods.IrrMore.Create(-0.1)).Message);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 7)]
    [InlineData(3, 1000)]
    [InlineData(4, 4096)]
    public void SelectionGivesTheValueSortingPutsAtEveryIndex(int seed, int n)
    {
        var rng = new Random(seed);
        // Many ties (zero Fisher, a few repeated values), negatives (irr-more's −F) and distinct values.
        var values = Enumerable.Range(0, n).Select(_ => rng.Next(4) switch
        {
            0 => 0f,
            1 => rng.Next(3) * 0.25f,
            2 => -(float)rng.NextDouble(),
            _ => (float)rng.NextDouble(),
        }).ToArray();
        var sorted = (float[])values.Clone();
        Array.Sort(sorted);
        foreach (int k in Enumerable.Range(0, n).Where(k => n < 50 || k % 97 == 0 || k == n - 1))
            Assert.Equal(sorted[k], FisherRankedStrategy.SelectKth((float[])values.Clone(), k));
        Assert.Throws<ArgumentOutOfRangeException>(() => FisherRankedStrategy.SelectKth((float[])values.Clone(), n));
    }
}
