using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Realign;

/// <summary>What realignment did to one target matrix.</summary>
/// <param name="Layer">Decoder layer.</param>
/// <param name="Module">q_proj …</param>
/// <param name="Parameters">Entries of the matrix.</param>
/// <param name="Conflicts">Deltas whose sign conflicted with the safety vector (per block, on compensated values).</param>
/// <param name="Removed">Deltas removed.</param>
/// <param name="Lambda">Damping λ added to diag H (NaN in a dry run).</param>
/// <param name="PercDamp">percdamp that gave λ, after retries.</param>
/// <param name="DampingRetries">Failed Cholesky factorisations before λ worked.</param>
/// <param name="ObsError">SparseGPT's loss Σ e²/2 (0 in a dry run).</param>
/// <param name="Seconds">Time for this matrix (its share of the factorisation included).</param>
public sealed record ModuleReport(int Layer, string Module, long Parameters, long Conflicts, long Removed,
    double Lambda, double PercDamp, int DampingRetries, double ObsError, double Seconds)
{
    /// <summary>Removed as a percentage of the parameters.</summary>
    public double RemovedPercent => Parameters == 0 ? 0 : 100.0 * Removed / Parameters;
}

/// <summary>The result of a realignment: per module, and the time of each phase.</summary>
public sealed class RealignReport
{
    /// <summary>Per target matrix, in layer order.</summary>
    public List<ModuleReport> Modules { get; } = [];

    /// <summary>Seconds per phase: load, forward, hessian, cholesky, obs, write.</summary>
    public Dictionary<string, double> PhaseSeconds { get; } = new() { ["load"] = 0, ["forward"] = 0, ["hessian"] = 0, ["cholesky"] = 0, ["obs"] = 0, ["write"] = 0 };

    /// <summary>Calibration tokens (N).</summary>
    public long CalibrationTokens { get; set; }

    /// <summary>Whether this was identification only.</summary>
    public bool DryRun { get; set; }

    /// <summary>The report's file name inside a realigned model directory.</summary>
    public const string FileName = "irr-report.json";

    /// <summary>The report as JSON: the header (inputs, options), per layer and module, totals and phase times.</summary>
    public JsonObject ToJson(JsonObject header, double seconds)
    {
        var o = header.DeepClone().AsObject();
        o["dry_run"] = DryRun;
        o["calibration_tokens"] = CalibrationTokens;
        var layers = new JsonArray();
        foreach (var group in Modules.GroupBy(m => m.Layer))
        {
            layers.Add(new JsonObject
            {
                ["layer"] = group.Key,
                ["seconds"] = group.Sum(m => m.Seconds),
                ["modules"] = new JsonArray(group.Select(m => (JsonNode?)new JsonObject
                {
                    ["module"] = m.Module,
                    ["parameters"] = m.Parameters,
                    ["conflicts"] = m.Conflicts,
                    ["removed"] = m.Removed,
                    ["removed_percent"] = Math.Round(m.RemovedPercent, 4),
                    ["damping"] = double.IsNaN(m.Lambda) ? null : m.Lambda,
                    ["percdamp"] = double.IsNaN(m.PercDamp) ? null : m.PercDamp,
                    ["damping_retries"] = m.DampingRetries,
                    ["obs_error"] = m.ObsError,
                    ["seconds"] = Math.Round(m.Seconds, 4),
                }).ToArray()),
            });
        }
        o["layers"] = layers;
        long parameters = Modules.Sum(m => m.Parameters), removed = Modules.Sum(m => m.Removed);
        o["totals"] = new JsonObject
        {
            ["modules"] = Modules.Count,
            ["parameters"] = parameters,
            ["conflicts"] = Modules.Sum(m => m.Conflicts),
            ["removed"] = removed,
            ["removed_percent"] = parameters == 0 ? 0 : Math.Round(100.0 * removed / parameters, 4),
            ["obs_error"] = Modules.Sum(m => m.ObsError),
            ["damping_retries"] = Modules.Sum(m => m.DampingRetries),
        };
        o["phase_seconds"] = new JsonObject(PhaseSeconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 3))));
        o["seconds"] = Math.Round(seconds, 3);
        return o;
    }

    /// <summary>
    /// Reads a report written by <see cref="ToJson"/> (an <c>irr-report.json</c>): per module the layer, module and
    /// <c>removed</c> are required, the other figures default to 0 (damping and percdamp to NaN) when absent, so a
    /// hand-written list of removal counts reads too.
    /// </summary>
    /// <exception cref="IrrException">The file is missing or is not a realignment report.</exception>
    public static RealignReport Load(string path)
    {
        string name = System.IO.Path.GetFileName(path);
        if (!File.Exists(path)) throw new IrrException($"{name}: file not found ({path})");
        using var doc = JsonCursor.Parse(BoundedText.Read(path), name);
        var root = JsonCursor.Root(doc, name);
        var report = new RealignReport { DryRun = root.Bool("dry_run", false), CalibrationTokens = (long)(root.GetNonNull("calibration_tokens")?.AsDouble() ?? 0) };
        double Number(JsonCursor c, string key, double fallback) => c.GetNonNull(key)?.AsDouble() ?? fallback;
        foreach (var layer in root.Required("layers").Items())
        {
            int l = layer.Required("layer").AsInt();
            foreach (var m in layer.Required("modules").Items())
                report.Modules.Add(new ModuleReport(l, m.Required("module").AsString(), (long)Number(m, "parameters", 0), (long)Number(m, "conflicts", 0),
                    (long)m.Required("removed").AsDouble(), Number(m, "damping", double.NaN), Number(m, "percdamp", double.NaN),
                    m.Int("damping_retries", 0), Number(m, "obs_error", 0), Number(m, "seconds", 0)));
        }
        if (root.GetNonNull("phase_seconds") is { } phases)
            foreach (var (key, value) in phases.Properties()) report.PhaseSeconds[key] = value.AsDouble();
        return report;
    }

    /// <summary>The per-matrix <c>removed</c> counts, by full weight name (what <c>random-at-count</c> repeats at random).</summary>
    public Dictionary<string, long> RemovalCounts() =>
        Modules.ToDictionary(m => ModelConfig.LinearWeightName(m.Layer, m.Module), m => m.Removed, StringComparer.Ordinal);

    /// <summary>The per-matrix <c>removed</c> counts of an <c>irr-report.json</c> (<see cref="FileName"/>), by full weight name.</summary>
    /// <exception cref="IrrException">The file is missing or is not a realignment report.</exception>
    public static Dictionary<string, long> ReadRemovalCounts(string path) => Load(path).RemovalCounts();
}
