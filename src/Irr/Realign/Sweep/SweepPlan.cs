using System.Globalization;

namespace Irr.Realign;

/// <summary>
/// One unit of a sweep: what one <c>irr sweep --point K</c> computes, never sharing a file with another unit, so that units
/// can run as independent jobs (a Slurm array task each) into one directory. Units are numbered from 0: one per value of s in
/// the order given (its IRR point, then its random control when asked for), then one per baseline point (in the order of
/// <see cref="SweepBaselines.All"/>: RESTA's γ, then Safe LoRA's τ …, each in the order given), then the references aligned (θ_A) and finetuned (θ_F).
/// </summary>
/// <param name="Index">Its number, from 0 to the number of units − 1.</param>
/// <param name="Labels">The labels of the models it computes, in order (<c>irr-s0.5</c>, <c>random-s0.5</c>; <c>resta-g1</c>; <c>aligned</c>).</param>
public sealed record SweepUnit(int Index, IReadOnlyList<string> Labels)
{
    /// <summary>Its first label, which names it (its judge cache, sweep.json's units).</summary>
    public string Label => Labels[0];

    /// <summary>Whether it is a reference (θ_A or θ_F) rather than points.</summary>
    public bool IsReference => Label is "aligned" or "finetuned";
}

/// <summary>A point to run: its label, method and setting (s, γ or τ), and for a control the label of the IRR point whose counts it removes.</summary>
internal sealed record PlannedPoint(string Label, string Method, double Setting, string? ControlOf)
{
    /// <summary>Whether a baseline (RESTA, Safe LoRA) makes it rather than a realignment.</summary>
    public bool IsBaseline => SweepBaselines.IsBaseline(Method);
}

/// <summary>A unit and the points it computes (none for a reference).</summary>
internal sealed record PlannedUnit(SweepUnit Unit, IReadOnlyList<PlannedPoint> Points);

/// <summary>The sweep's units in their order, from its options alone (no file is read): the one order <c>--point K</c>, <c>--list-points</c> and a whole run share.</summary>
public static class SweepPlan
{
    /// <summary>The label of a point: <c>METHOD-sS</c> (<c>irr-s0.5</c>), or <c>random-sS</c> for the control of the IRR point at s.</summary>
    public static string Label(string method, double sparsity) => $"{method}-s{N(sparsity)}";

    /// <summary>The units of <paramref name="job"/> (<see cref="SweepUnit"/>).</summary>
    public static IReadOnlyList<SweepUnit> Units(SweepJob job) => Of(job).Select(u => u.Unit).ToList();

    // Every unit: per s its IRR point (and control), each baseline point, then the references.
    internal static IReadOnlyList<PlannedUnit> Of(SweepJob job)
    {
        string method = job.Realign.Method;
        var units = job.Sparsity.Select(s => new[] { new PlannedPoint(Label(method, s), method, s, null) }
                .Concat(job.RandomControl ? [new PlannedPoint(Label("random", s), RemovalMethods.RandomAtCount.Name, s, Label(method, s))] : []).ToList())
            .Concat(SweepBaselines.All.SelectMany(b => b.Settings(job).Select(x => new List<PlannedPoint> { new(b.Label(x), b.Method, x, null) })))
            .Select(points => (Labels: points.Select(p => p.Label).ToList(), Points: points))
            .Append((Labels: ["aligned"], Points: [])).Append((Labels: ["finetuned"], Points: []));
        return units.Select((u, i) => new PlannedUnit(new SweepUnit(i, u.Labels), u.Points)).ToList();
    }

    /// <summary>The unit <paramref name="point"/> names: its index (0, 1 …) or one of its labels.</summary>
    /// <exception cref="IrrException">No unit has that index or label ("sweep: point must be … 0 to U − 1 (U units) …").</exception>
    public static SweepUnit Find(SweepJob job, string point)
    {
        var units = Units(job);
        var found = int.TryParse(point, NumberStyles.Integer, CultureInfo.InvariantCulture, out int index)
            ? (index >= 0 && index < units.Count ? units[index] : null)
            : units.FirstOrDefault(u => u.Labels.Contains(point, StringComparer.Ordinal));
        return found ?? throw new IrrException(
            $"{job.Command}: point must be a unit's index, 0 to {units.Count - 1} ({units.Count} units), or one of its labels " +
            $"({string.Join(", ", units.Select(u => u.Label).Take(3))}{(units.Count > 3 ? ", …" : "")}; list-points lists them), not '{point}'");
    }

    private static string N(double x) => x.ToString(CultureInfo.InvariantCulture);
}
