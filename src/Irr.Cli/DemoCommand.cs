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
            PrintTable(parseResult, result);
            parseResult.InvocationConfiguration.Error.WriteLine($"wrote models, evaluations, demo.json and report/ to {job.OutputPath} in {result.TotalSeconds:F1} s");
            return 0;
        });
        return command;
    }

    private static void PrintTable(ParseResult parseResult, DemoResult result)
    {
        var console = CommandSupport.ConsoleFor(parseResult.InvocationConfiguration.Output);
        console.Profile.Width = Math.Max(console.Profile.Width, 120);
        var table = new Table().Border(TableBorder.Simple)
            .Title($"irr demo, seed {result.Options.Seed} ({result.Options.Mode}): held-out harmful prompts and held-out task");
        table.AddColumn("model");
        table.AddColumn(new TableColumn("harmful rate").RightAligned());
        table.AddColumn(new TableColumn("complies").RightAligned());
        table.AddColumn(new TableColumn("refuses safe").RightAligned());
        table.AddColumn(new TableColumn("task accuracy").RightAligned());
        table.AddColumn(new TableColumn("deltas removed").RightAligned());
        table.AddColumn("what");
        foreach (var m in result.Models)
            table.AddRow(Markup.Escape(m.Label),
                $"{DemoReport.Percent(m.Safety.Overall.HarmfulRate)} ({m.Safety.Overall.Harmful.ToString(CultureInfo.InvariantCulture)}/{(m.Safety.Overall.Harmful + m.Safety.Overall.Safe).ToString(CultureInfo.InvariantCulture)})",
                $"{m.Complying.ToString(CultureInfo.InvariantCulture)}/{m.Safety.Overall.Total.ToString(CultureInfo.InvariantCulture)}",
                m.Safety.OverRefusal is { RefusalRate: { } r } o
                    ? $"{DemoReport.Percent(r)} ({o.Refused.ToString(CultureInfo.InvariantCulture)}/{o.Responses.ToString(CultureInfo.InvariantCulture)})"
                    : "—",
                $"{DemoReport.Percent(m.Task.Accuracy)} ({m.Task.Correct.ToString(CultureInfo.InvariantCulture)}/{m.Task.Total.ToString(CultureInfo.InvariantCulture)})",
                Markup.Escape(DemoReport.Removed(m)),
                Markup.Escape(m.Description));
        console.Write(table);
        var attacked = result.Models.Where(m => m.Safety.Attacks is not null).ToList();
        if (attacked.Count > 0)
        {
            var names = attacked.SelectMany(m => m.Safety.Attacks!.Select(a => a.Name)).Distinct().ToList();
            var jailbreaks = new Table().Border(TableBorder.Simple).Title("the same held-out harmful prompts under jailbreak attacks: harmful rate");
            jailbreaks.AddColumn("model");
            foreach (string name in names) jailbreaks.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
            foreach (var m in attacked)
                jailbreaks.AddRow([Markup.Escape(m.Label), .. names.Select(n => m.Safety.Attacks!.FirstOrDefault(a => a.Name == n) is { } a
                    ? $"{DemoReport.Percent(a.Counts.HarmfulRate)} ({a.Counts.Harmful.ToString(CultureInfo.InvariantCulture)}/{(a.Counts.Harmful + a.Counts.Safe).ToString(CultureInfo.InvariantCulture)})" : "—")]);
            console.Write(jailbreaks);
        }
        foreach (var (variant, sweep) in result.Sweeps)
            console.WriteLine($"{variant}: s* = {sweep.Choice.Point.Setting.ToString(CultureInfo.InvariantCulture)} on the validation split: {sweep.Choice.Reason}");
        console.WriteLine("harmful rate: keyword judge (no refusal = harmful); complies: responses that are the world's harmful recipe (\"Sure, …\")");
        console.WriteLine("refuses safe: over-refusal, the refusal rate (a refusal marker) on held-out safe requests that borrow the harm templates' words");
    }
}
