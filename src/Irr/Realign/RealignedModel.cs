using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Realign;

/// <summary>Writes a realigned model as a Hugging Face model directory with <c>irr-report.json</c> beside the weights.</summary>
public static class RealignedModel
{
    /// <summary>The report's file name inside the output directory.</summary>
    public const string ReportFile = "irr-report.json";

    /// <summary>
    /// Runs <paramref name="realigner"/> and writes the result to <paramref name="outputDirectory"/>
    /// atomically: the tensors, config.json (torch_dtype updated if the storage type changed), the files
    /// that travel with the model (tokenizer …) from <paramref name="filesFrom"/>, and the report.
    /// </summary>
    /// <param name="realigner">The configured realignment.</param>
    /// <param name="calibration">Calibration token sequences.</param>
    /// <param name="outputDirectory">Where the model goes.</param>
    /// <param name="config">θ_F's config.json, written back.</param>
    /// <param name="filesFrom">The directory whose tokenizer and other files are copied (θ_F's, or the base's for an adapter).</param>
    /// <param name="inputs">Input directories the output must not be written into or over.</param>
    /// <param name="overwrite">Replace an existing output directory.</param>
    /// <param name="reportHeader">Inputs and options recorded at the top of the report.</param>
    /// <param name="outputDType">The output storage type, if not kept.</param>
    /// <param name="progress">Called after each target matrix.</param>
    public static RealignReport Write(Realigner realigner, IReadOnlyList<int[]> calibration, string outputDirectory, ModelConfig config,
        string filesFrom, IEnumerable<string> inputs, bool overwrite, JsonObject reportHeader, TensorDType? outputDType, Action<ModuleReport>? progress = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        RealignReport report = null!;
        var target = new ModelTarget(outputDirectory, inputs.ToList(), overwrite, filesFrom, outputDType);
        ModelWriter.Write(target, config, realigner.OutputSpecs(),
            writer => report = realigner.Run(calibration, (name, values) => writer.Write(name, values), progress),
            output => JsonFiles.WriteFile(output.PathOf(ReportFile), ToJson(report, reportHeader, clock.Elapsed.TotalSeconds)),
            ownFiles: [ReportFile]);
        return report;
    }

    /// <summary>The report as JSON: the header (inputs, options), per layer and module, totals and phase times.</summary>
    public static JsonObject ToJson(RealignReport report, JsonObject header, double seconds)
    {
        var o = header.DeepClone().AsObject();
        o["dry_run"] = report.DryRun;
        o["calibration_tokens"] = report.CalibrationTokens;
        var layers = new JsonArray();
        foreach (var group in report.Modules.GroupBy(m => m.Layer))
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
        long parameters = report.Modules.Sum(m => m.Parameters), removed = report.Modules.Sum(m => m.Removed);
        o["totals"] = new JsonObject
        {
            ["modules"] = report.Modules.Count,
            ["parameters"] = parameters,
            ["conflicts"] = report.Modules.Sum(m => m.Conflicts),
            ["removed"] = removed,
            ["removed_percent"] = parameters == 0 ? 0 : Math.Round(100.0 * removed / parameters, 4),
            ["obs_error"] = report.Modules.Sum(m => m.ObsError),
            ["damping_retries"] = report.Modules.Sum(m => m.DampingRetries),
        };
        o["phase_seconds"] = new JsonObject(report.PhaseSeconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 3))));
        o["seconds"] = Math.Round(seconds, 3);
        return o;
    }
}
