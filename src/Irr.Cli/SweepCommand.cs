using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Jobs;
using Irr.Realign;
using Spectre.Console;

namespace Irr.Cli;

/// <summary>
/// <c>irr sweep</c>: chooses IRR's sparsity s on validation data (<see cref="SweepJob"/>): realigns at every s, evaluates
/// every point, θ_A and θ_F, and chooses by <see cref="SweepSelection.Rule"/>; writes DIR/points, DIR/reference, DIR/chosen,
/// sweep.json and frontier.svg (docs/SWEEP.md).
/// </summary>
internal static class SweepCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(SweepJob));
        // The realignment's --method and --calibration as the sweep means them (its points' removal rules; no dry run).
        command.OptionOf("method").Description = $"the points' removal rule: {RemovalMethods.Names(RemovalMethods.Sweepable)}";
        command.OptionOf("calibration").Description = $"the task's own training data, for the Hessians (required: a sweep has no dry run): {OptionHelp.Records}";
        // Command-line only: they print instead of running.
        var listPoints = new Option<bool>("--list-points")
        {
            Description = "print the units and exit without any work: from 0, one per s (its IRR point, then its random control), one per baseline point, " +
                          "then aligned and finetuned; one line each (index, a tab, its labels comma-separated), then 'units: U'",
        };
        var json = new Option<bool>("--json") { Description = "--list-points: print the units as JSON ({\"units\": [{\"index\", \"labels\"}], \"count\": U})" };
        command.Options.Add(listPoints);
        command.Options.Add(json);
        command.SetAction(parseResult =>
        {
            var job = command.Build<SweepJob>(parseResult);
            var stdout = parseResult.InvocationConfiguration.Output;
            var stderr = parseResult.InvocationConfiguration.Error;
            bool list = parseResult.GetValue(listPoints);
            if (parseResult.GetValue(json) && !list) throw new IrrException("sweep: json applies to list-points only");
            if (list)
            {
                if (job.Point is not null || job.Collect) throw new IrrException("sweep: list-points does no work; give it without point and collect");
                job.Validate(); // a bad option or a missing input fails here too, before any array task is started
                job.RequireInputs();
                PrintUnits(stdout, job.Units(), parseResult.GetValue(json));
                return 0;
            }
            if (job.Point is not null)
            {
                var unit = CommandSupport.Run(parseResult, new UnitJob(job), oneBar: true);
                int count = job.Units().Count;
                foreach (var (p, dir) in unit.Points.Zip(unit.Directories))
                    stdout.WriteLine($"{p.Label}: harmful {SweepSelection.Percent(p.HarmfulRate)}, task {SweepSelection.Percent(p.TaskScore)} ({dir})");
                if (unit.Reference is { } r)
                    stdout.WriteLine($"{r.Label}: harmful {SweepSelection.Percent(r.HarmfulRate)}, task {SweepSelection.Percent(r.TaskScore)} ({unit.Directories[0]})");
                stderr.WriteLine($"unit {unit.Unit.Index} of 0..{count - 1} ({string.Join(", ", unit.Unit.Labels)}): {unit.Realigned} realignment(s) run, " +
                                 (unit.BaselinesMade > 0 ? $"{unit.BaselinesMade} baseline point(s) made, " : "") +
                                 $"{unit.Resumed} model(s) done earlier and skipped" + (unit.JudgeCache is null ? "" : $"; judge cache {unit.JudgeCache}"));
                stderr.WriteLine($"wrote {string.Join(", ", unit.Directories)}; models kept for the collect step (irr sweep … --collect -o {job.OutputPath})");
                return 0;
            }
            var result = CommandSupport.Run(parseResult, job, oneBar: true);
            PrintTable(parseResult, result, job.Rule);
            stderr.WriteLine($"{result.Realigned} realignment(s) run, " + (result.BaselinesMade > 0 ? $"{result.BaselinesMade} baseline point(s) made, " : "") +
                             $"{result.Resumed} point(s) or reference(s) done earlier and skipped");
            stderr.WriteLine($"units: {result.UnitsDoneEarlier} done earlier (by earlier runs or --point jobs), {result.UnitsComputed} computed now");
            stderr.WriteLine($"wrote {SweepJob.FileName}, frontier.svg and the chosen model ({result.ChosenModel}) to {job.OutputPath}");
            return 0;
        });
        return command;
    }

    // One line per unit (index, a tab, its labels joined by commas), then "units: U"; or the same as JSON.
    private static void PrintUnits(TextWriter output, IReadOnlyList<SweepUnit> units, bool json)
    {
        if (json)
        {
            output.WriteLine(new JsonObject
            {
                ["units"] = new JsonArray(units.Select(u => (JsonNode?)new JsonObject
                    { ["index"] = u.Index, ["labels"] = new JsonArray(u.Labels.Select(l => (JsonNode?)l).ToArray()) }).ToArray()),
                ["count"] = units.Count,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return;
        }
        foreach (var u in units) output.WriteLine($"{u.Index}\t{string.Join(",", u.Labels)}");
        output.WriteLine($"units: {units.Count}");
    }

    // irr sweep --point K as a job of its own, for the progress bar: the sweep's checks, then one unit.
    private sealed class UnitJob(SweepJob sweep) : IJob<SweepUnitResult>
    {
        public string Command => sweep.Command;
        public IReadOnlyList<string> Inputs => sweep.Inputs;
        public string? Output => sweep.Output;
        public void Validate() => sweep.Validate();
        public SweepUnitResult Run(Action<JobProgress>? progress = null) => sweep.RunUnit(progress);
    }

    // θ_A and θ_F, then one row per point, each figure with its 95% interval; the rule and the choice below.
    private static void PrintTable(ParseResult parseResult, SweepResult result, string rule)
    {
        var console = CommandSupport.ConsoleFor(parseResult.InvocationConfiguration.Output);
        console.Profile.Width = Math.Max(console.Profile.Width, 140); // a redirected output reports 80 columns
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("model");
        foreach (string column in new[] { "setting", "removed %", "harmful", "95% CI", "task", "95% CI" }) table.AddColumn(new TableColumn(column).RightAligned());
        table.AddColumn("control");
        table.AddColumn("chosen");
        static string P(double fraction) => SweepSelection.Percent(fraction);
        static string Ci(Interval? i) => i?.ToPercent() ?? "";
        foreach (var r in new[] { result.Aligned, result.Finetuned })
            table.AddRow(Markup.Escape(r.Label == "aligned" ? "θ_A (aligned)" : "θ_F (fine-tuned)"), "", "",
                P(r.HarmfulRate), Ci(r.HarmfulRateInterval), P(r.TaskScore), Ci(r.TaskScoreInterval), "", "");
        foreach (var p in result.Points)
            table.AddRow(Markup.Escape(p.Label), Markup.Escape(Setting(p)), p.IsBaseline ? "" : (100 * p.RemovedShare).ToString("F2", CultureInfo.InvariantCulture),
                P(p.HarmfulRate), Ci(p.HarmfulRateInterval), P(p.TaskScore), Ci(p.TaskScoreInterval), p.IsControl ? "yes" : "", p.Label == result.Choice.Point.Label ? "<-" : "");
        console.Write(table);
        console.WriteLine($"rule: {SweepSelection.Describe(rule)}");
        console.WriteLine($"chosen: {result.Choice.Reason}");
        foreach (var (method, choice) in result.Baselines)
            console.WriteLine($"{method} at its best setting by the same rule: {choice.Reason}");
    }

    // "s=0.5" for IRR points and controls, "γ=0.5", "ρ=1e-5" … for a baseline's: its knob, as written on the command line.
    private static string Setting(SweepPoint p) =>
        $"{SweepBaselines.Of(p.Method)?.Symbol ?? "s"}={SweepBaseline.Readable(p.Setting)}";
}
