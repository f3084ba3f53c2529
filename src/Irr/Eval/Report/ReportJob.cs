using Irr.Jobs;

namespace Irr.Eval.Report;

/// <summary>
/// <c>irr report</c> as a job: compares evaluated models (run directories with safety.json and/or task.json) in
/// report.md, report.html, report.json and the SVG charts, written into a new directory as a whole
/// (<see cref="ComparisonReport"/>, docs/REPORT.md).
/// </summary>
[Job("report", Help = "Compare evaluated models: tables of harmful rates (per prompt set and per attack) and task accuracy, bar charts, " +
    "a safety-vs-utility scatter with its Pareto front (Markdown, HTML, JSON, SVG)")]
public sealed record ReportJob : IJob<ComparisonReport>
{
    /// <summary>The evaluation run directories, one per model, in the report's order.</summary>
    [Option("evaluation run directories (safety.json and/or task.json), one per model", Positional = true, HelpName = "RUN_DIR",
        Kind = OptionKind.Input, Required = true, From = ArtifactKind.EvalRun, Many = true)]
    public IReadOnlyList<string> Runs { get; init; } = [];

    /// <summary>The report directory to create.</summary>
    [Option("the report directory to create", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputDir { get; init; }

    /// <summary>The models' labels, one per run directory; null for the directory names.</summary>
    [Option("comma-separated model labels, one per RUN_DIR (default: the directory names)")]
    public IReadOnlyList<string>? Labels { get; init; }

    /// <summary>The report's title; null for <see cref="ComparisonReport.DefaultTitle"/>.</summary>
    [Option($"the report's title (default: \"{ComparisonReport.DefaultTitle}\")")]
    public string? Title { get; init; }

    /// <summary>The label of the model the others are compared with (paired differences on the same prompts); null for the first run.</summary>
    [Option("the model (label) the others are compared with on the same prompts and examples: differences with paired bootstrap intervals, the headline (default: the first RUN_DIR)")]
    public string? Reference { get; init; }

    /// <summary>Replace the output directory if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <inheritdoc/>
    public string Command => "report";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Runs;

    /// <inheritdoc/>
    public string? Output => OutputDir;

    /// <inheritdoc/>
    public void Validate()
    {
        Validation.Require(Runs.Count > 0, Command, "give at least one run directory");
        Validation.Require(Labels is null || Labels.Count == Runs.Count, Command,
            $"labels gives {Labels?.Count} label(s) for {Runs.Count} run director{(Runs.Count == 1 ? "y" : "ies")}");
    }

    /// <summary>Reads the runs, builds the report and writes it; returns the report. It reports no progress (it takes a moment).</summary>
    /// <exception cref="IrrException">An option is invalid, the output exists (without <see cref="Overwrite"/>), or a run directory is missing or invalid.</exception>
    public ComparisonReport Run(Action<JobProgress>? progress = null)
    {
        Validate();
        ComparisonReport.RequireNewOutput(OutputDir, Overwrite);
        var report = ComparisonReport.Build(Runs.Select((d, i) => ComparisonReport.LoadReportRun(d, Labels?[i])).ToList(), Title,
            new ReportOptions { Reference = Reference });
        report.WriteTo(OutputDir, Overwrite, Runs);
        return report;
    }
}
