namespace Irr.Realign;

/// <summary>
/// One removal method of <c>irr realign --method</c>, recipes and the sweep: its name, help text, what it takes and
/// how its <see cref="IRemovalStrategy"/> is made (a row of <see cref="RemovalMethods.All"/>).
/// </summary>
/// <param name="Name">The name on the command line, in recipes and in reports.</param>
/// <param name="Help">What it removes, in one phrase.</param>
/// <param name="TakesSparsity">Whether s applies (the Fisher-ranked rules; these are the ones a sweep varies).</param>
/// <param name="TakesRemovalCounts">Whether it needs removal-counts (an irr-report.json) and takes a seed.</param>
/// <param name="Note">What --method's help adds after the name, or null.</param>
/// <param name="Factory">Makes the strategy from s, the per-matrix removal counts (or null) and the seed.</param>
public sealed record RemovalMethod(string Name, string Help, bool TakesSparsity, bool TakesRemovalCounts, string? Note,
    Func<double, IReadOnlyDictionary<string, long>?, int, IRemovalStrategy> Factory)
{
    /// <summary>The strategy with sparsity s (or, for <see cref="TakesRemovalCounts"/>, the counts and seed).</summary>
    /// <exception cref="IrrException">s outside [0, 1].</exception>
    public IRemovalStrategy Create(double sparsity, IReadOnlyDictionary<string, long>? counts = null, int seed = 0) => Factory(sparsity, counts, seed);
}

/// <summary>The removal methods as data, in mergekit's registry manner: one row per method, read by validation, help texts, the sweep and <see cref="RealignJob.CreateStrategy"/>.</summary>
public static class RemovalMethods
{
    /// <summary><c>irr</c> (the paper's method, the default): remove the conflicting deltas except the fraction s of them with the lowest Fisher; s = 0 removes every conflict.</summary>
    public static RemovalMethod Irr { get; } = new("irr", "remove the conflicting deltas except the fraction s of them with the lowest Fisher",
        TakesSparsity: true, TakesRemovalCounts: false, Note: null, (s, _, _) => new FisherRankedStrategy("irr", s, conflictsOnly: true, agreeingSign: 1));

    /// <summary>
    /// <c>irr-more</c>: score F on conflicts and −F elsewhere over every entry; keep the lowest fraction s (removes all
    /// conflicts first, then the least safety-important agreeing deltas).
    /// </summary>
    public static RemovalMethod IrrMore { get; } = new("irr-more", "every delta is a candidate, conflicts first: keep the fraction s scoring lowest (F on conflicts, −F elsewhere)",
        TakesSparsity: true, TakesRemovalCounts: false, Note: null, (s, _, _) => new FisherRankedStrategy("irr-more", s, conflictsOnly: false, agreeingSign: -1));

    /// <summary><c>fisher-only</c> (ablation without the sign test): score F over every entry; keep the lowest fraction s.</summary>
    public static RemovalMethod FisherOnly { get; } = new("fisher-only", "ablation without the sign test: keep the fraction s of all deltas with the lowest Fisher",
        TakesSparsity: true, TakesRemovalCounts: false, Note: null, (s, _, _) => new FisherRankedStrategy("fisher-only", s, conflictsOnly: false, agreeingSign: 1));

    /// <summary><c>random-at-count</c>, the random-removal control (<see cref="RandomAtCountStrategy"/>).</summary>
    public static RemovalMethod RandomAtCount { get; } = new("random-at-count", "remove, per matrix, as many deltas as an IRR report did, chosen at random",
        TakesSparsity: false, TakesRemovalCounts: true, Note: "the random-removal control: with --removal-counts and --seed",
        (_, counts, seed) => new RandomAtCountStrategy(counts ?? throw new IrrException("random-at-count needs removal counts"), seed));

    /// <summary>Every method, the default first.</summary>
    public static IReadOnlyList<RemovalMethod> All { get; } = [Irr, IrrMore, FisherOnly, RandomAtCount];

    /// <summary>The methods a sweep varies s of.</summary>
    public static IReadOnlyList<RemovalMethod> Sweepable { get; } = All.Where(m => m.TakesSparsity).ToList();

    /// <summary>The row named <paramref name="name"/>, or null.</summary>
    public static RemovalMethod? Find(string name) => All.FirstOrDefault(m => m.Name == name);

    /// <summary>The row named <paramref name="name"/>.</summary>
    /// <exception cref="IrrException">No method has that name.</exception>
    public static RemovalMethod Get(string name) => Find(name) ?? throw new IrrException($"method must be {Names(All)}, not '{name}'");

    /// <summary>The names as a sentence lists them: "irr, irr-more, fisher-only or random-at-count".</summary>
    public static string Names(IReadOnlyList<RemovalMethod> methods) =>
        methods.Count == 1 ? methods[0].Name : $"{string.Join(", ", methods.SkipLast(1).Select(m => m.Name))} or {methods[^1].Name}";

    /// <summary>--method's help text: "irr, irr-more, fisher-only, or random-at-count (the random-removal control: …)".</summary>
    public static string Help { get; } = string.Join(", ", All.SkipLast(1).Select(Described)) + ", or " + Described(All[^1]);

    private static string Described(RemovalMethod m) => m.Note is null ? m.Name : $"{m.Name} ({m.Note})";
}
