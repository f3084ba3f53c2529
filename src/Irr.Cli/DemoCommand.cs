using System.CommandLine;
using System.Globalization;
using Irr.Demo;
using Irr.IO;
using Spectre.Console;

namespace Irr.Cli;

/// <summary>
/// <c>irr demo</c>: a self-contained toy world in which a tiny Llama, chat-aligned from the world's shipped base model, loses its refusals to
/// fine-tuning and IRR restores them; every model, evaluation and the report go under <c>-o</c>.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var command = new JobCommand(typeof(DemoJob));
        command.Subcommands.Add(DemoPretrainCommand.Create());
        command.SetAction(parseResult =>
        {
            var job = command.Build<DemoJob>(parseResult);
            // Refuse a bad output before the minutes of work.
            OutputDirectory.Create(job.OutputPath, [], job.Overwrite).Dispose();
            var result = CommandSupport.Run(parseResult, job);
            PrintTable(parseResult.InvocationConfiguration.Output, result);
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote models, evaluations, demo.json and report/ to {job.OutputPath} in {result.TotalSeconds:F1} s");
            return 0;
        });
        return command;
    }

    // The held-out figures with their intervals, the legend, the jailbreak table and the choices of s, on `output`.
    internal static void PrintTable(TextWriter output, DemoResult result)
    {
        var console = CommandSupport.ConsoleFor(output);
        console.Profile.Width = Math.Max(console.Profile.Width, 120);
        var table = new Table().Border(TableBorder.Simple)
            .Title($"irr demo, seed {result.Options.Seed} ({result.Options.Mode}): held-out harmful prompts and held-out task");
        table.AddColumn("model");
        table.AddColumn(new TableColumn("harmful rate").RightAligned());
        table.AddColumn(new TableColumn("95% CI").RightAligned());
        table.AddColumn(new TableColumn("complies").RightAligned());
        table.AddColumn(new TableColumn("task accuracy").RightAligned());
        table.AddColumn(new TableColumn("95% CI").RightAligned());
        table.AddColumn(new TableColumn("deltas removed").RightAligned());
        foreach (var column in table.Columns.Skip(1)) column.NoWrap();
        foreach (var m in result.Models)
            table.AddRow(Markup.Escape(m.Label),
                DemoReport.Rate(m.Safety.Overall.Harmful, m.Safety.Overall.Harmful + m.Safety.Overall.Safe),
                DemoReport.Ci(m.Safety.Overall.HarmfulRateInterval),
                $"{m.Complying.ToString(CultureInfo.InvariantCulture)}/{m.Safety.Overall.Total.ToString(CultureInfo.InvariantCulture)}",
                DemoReport.Rate(m.Task.Correct, m.Task.Total),
                DemoReport.Ci(m.Task.AccuracyInterval),
                Markup.Escape(DemoReport.Removed(m)));
        console.Write(table);
        var legend = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        foreach (var m in result.Models) legend.AddRow(Markup.Escape(m.Label), Markup.Escape(m.Description));
        console.Write(legend);
        console.WriteLine();
        var attacked = result.Models.Where(m => m.Safety.Attacks is not null).ToList();
        if (attacked.Count > 0)
        {
            var names = attacked.SelectMany(m => m.Safety.Attacks!.Select(a => a.Name)).Distinct().ToList();
            var jailbreaks = new Table().Border(TableBorder.Simple).Title("the same held-out harmful prompts under jailbreak attacks: harmful rate");
            jailbreaks.AddColumn("model");
            foreach (string name in names) jailbreaks.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
            foreach (var m in attacked)
                jailbreaks.AddRow([Markup.Escape(m.Label), .. names.Select(n => m.Safety.Attacks!.FirstOrDefault(a => a.Name == n) is { } a
                    ? Markup.Escape($"{DemoReport.Rate(a.Counts.Harmful, a.Counts.Harmful + a.Counts.Safe)} [{DemoReport.Ci(a.Counts.HarmfulRateInterval)}]") : "—")]);
            console.Write(jailbreaks);
        }
        foreach (var (variant, sweep) in result.Sweeps)
            console.WriteLine($"{variant}: s* = {sweep.Choice.Point.Setting.ToString(CultureInfo.InvariantCulture)} on the validation split: {sweep.Choice.Reason}");
        console.WriteLine("95% CI: Wilson interval of the rate, in percent. harmful rate: keyword judge (no refusal = harmful); complies: responses that are the world's harmful recipe (\"Sure, …\")");
    }
}
