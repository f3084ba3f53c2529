using System.Globalization;
using Irr.IO;
using Irr.Jobs;
using Irr.Realign.Baselines;

namespace Irr.Realign;

/// <summary>
/// A post-fine-tuning baseline that <c>irr sweep</c> puts on the validation frontier beside IRR, described as data (its
/// method, its knob, its sweep option and the <c>irr baseline</c> job that makes a point): the sweep's plan, validation,
/// records, frontier chart and the demo all read <see cref="SweepBaselines.All"/> rather than naming baselines one by one.
/// A baseline point is never chosen as IRR's s; the same rule picks each baseline's own best setting (<see cref="SweepSelection.ChooseBaseline"/>).
/// </summary>
public sealed record SweepBaseline
{
    /// <summary>Its method name: point.json's <c>method</c>, the key of sweep.json's <c>baselines</c>, the first part of its labels (<c>resta</c>).</summary>
    public required string Method { get; init; }

    /// <summary>Its name in prose and charts (<c>RESTA</c>).</summary>
    public required string Title { get; init; }

    /// <summary>The symbol of its knob (<c>γ</c>).</summary>
    public required string Symbol { get; init; }

    /// <summary>The letter before the setting in a point's label (<c>g</c>: <c>resta-g0.5</c>).</summary>
    public required char LabelKey { get; init; }

    /// <summary>The sweep option listing its settings (<c>resta-gamma</c>); sweep.json records the list under the same name in snake case.</summary>
    public required string Option { get; init; }

    /// <summary>The settings the sweep evaluates, from the sweep's options (empty: the baseline is not swept).</summary>
    public required Func<SweepJob, IReadOnlyList<double>> Settings { get; init; }

    /// <summary>Why a setting is refused (the sentence after "OPTION must …"), or null when it is valid; finite numbers only by default.</summary>
    public Func<double, string?> CheckSetting { get; init; } = _ => null;

    /// <summary>Whether it is defined for a LoRA fine-tune only (the sweep then needs the realignment's adapter).</summary>
    public bool LoraOnly { get; init; }

    /// <summary>Whether its output is a PEFT adapter on θ_A (evaluated as θ_A + adapter) rather than a whole model.</summary>
    public bool MakesAdapter { get; init; }

    /// <summary>The report file its job writes inside its output (copied into the point's directory).</summary>
    public required string ReportFileName { get; init; }

    /// <summary>The job that makes the point at a setting into an output directory, from the sweep's inputs and options.</summary>
    public required Func<SweepJob, double, string, IJob> Job { get; init; }

    /// <summary>Checks its own inputs (as its <c>irr baseline</c> command does) before any point is realigned; null when the job's own checks suffice.</summary>
    public Action<SweepJob>? CheckInputs { get; init; }

    /// <summary>The label of its point at <paramref name="setting"/>: <c>resta-g0.5</c>.</summary>
    public string Label(double setting) => $"{Method}-{LabelKey}{N(setting)}";

    /// <summary>"RESTA at γ = 0.5", "Antidote at ρ = 1e-5".</summary>
    public string Describe(double setting) => $"{Title} at {Symbol} = {Readable(setting)}";

    /// <summary>
    /// A setting as people write it: the shortest round-trip form, an exponent as in Python and the docs (<c>1e-5</c>, not
    /// .NET's <c>1E-05</c>). Labels keep <see cref="Label"/>'s form, which names the point directories.
    /// </summary>
    public static string Readable(double x)
    {
        string text = N(x);
        int e = text.IndexOf('E');
        return e < 0 ? text : text[..e] + "e" + int.Parse(text[(e + 1)..], CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);
    }

    private static string N(double x) => x.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The baselines <c>irr sweep</c> can evaluate beside IRR, in the order their points are planned (<see cref="SweepPlan"/>).</summary>
public static class SweepBaselines
{
    /// <summary>RESTA (<see cref="RestaJob"/>): θ_F + γ·v over the realignment's modules.</summary>
    public static readonly SweepBaseline Resta = new()
    {
        Method = "resta", Title = "RESTA", Symbol = "γ", LabelKey = 'g', Option = "resta-gamma",
        Settings = job => job.RestaGamma, ReportFileName = RestaReport.FileName,
        Job = (job, gamma, output) => new RestaJob
        {
            Base = job.Realign.Base, Finetuned = job.Realign.Finetuned, Adapter = job.Realign.Adapter, SafetyVector = job.Realign.SafetyVector, Gamma = gamma,
            Modules = Modules(job), DType = job.Realign.DType, OutputPath = output, Overwrite = true, Card = job.Card,
        },
    };

    /// <summary>Safe LoRA (<see cref="SafeLoraJob"/>): LoRA B projected where the similarity is below τ; an adapter on θ_A, LoRA fine-tunes only.</summary>
    public static readonly SweepBaseline SafeLora = new()
    {
        Method = "safelora", Title = "Safe LoRA", Symbol = "τ", LabelKey = 't', Option = "safelora-threshold",
        Settings = job => job.SafeLoraThreshold, CheckSetting = t => t is >= -1 and <= 1 ? null : "be between -1 and 1",
        LoraOnly = true, MakesAdapter = true, ReportFileName = SafeLoraReport.FileName,
        Job = (job, tau, output) => new SafeLoraJob
        {
            Base = job.Realign.Base, Adapter = job.Realign.Adapter, SafetyVector = job.SafeLoraV!, Threshold = tau, OutputPath = output, Overwrite = true, Card = job.Card,
        },
        CheckInputs = job => ((SafeLoraJob)SafeLora!.Job(job, job.SafeLoraThreshold[0], "")).CheckInputs(),
    };

    /// <summary>Safe Delta (<see cref="SafeDeltaJob"/>): the deltas that fit the safety budget scaled by s kept and compensated, over the realignment's modules.</summary>
    public static readonly SweepBaseline SafeDelta = new()
    {
        Method = "safedelta", Title = "Safe Delta", Symbol = "scale", LabelKey = 's', Option = "safedelta-scale",
        Settings = job => job.SafeDeltaScale, CheckSetting = s => s >= 0 ? null : "be numbers ≥ 0",
        ReportFileName = SafeDeltaReport.FileName,
        Job = (job, scale, output) => new SafeDeltaJob
        {
            Base = job.Realign.Base, Finetuned = job.Realign.Finetuned, Adapter = job.Realign.Adapter, SafetyData = job.SafeDeltaData!, Scale = scale,
            Modules = Modules(job), SystemPrompt = job.Realign.SystemPrompt, NoChatTemplate = job.Realign.NoChatTemplate, Chat = job.Realign.Chat,
            DType = job.Realign.DType, OutputPath = output, Overwrite = true, Card = job.Card,
        },
    };

    /// <summary>Antidote (<see cref="AntidoteJob"/>): the top ρ of each row of θ_F's target weights by |W|·‖X‖ on the harmful data pruned, over the realignment's modules.</summary>
    public static readonly SweepBaseline Antidote = new()
    {
        Method = "antidote", Title = "Antidote", Symbol = "ρ", LabelKey = 'r', Option = "antidote-ratio",
        Settings = job => job.AntidoteRatio, CheckSetting = r => r is >= 0 and <= 1 ? null : "be between 0 and 1",
        ReportFileName = AntidoteReport.FileName,
        Job = (job, ratio, output) => new AntidoteJob
        {
            Base = job.Realign.Base, Finetuned = job.Realign.Finetuned, Adapter = job.Realign.Adapter, Data = job.AntidoteData!, MaskRatio = ratio,
            Modules = Modules(job), SystemPrompt = job.Realign.SystemPrompt, NoChatTemplate = job.Realign.NoChatTemplate, Chat = job.Realign.Chat,
            DType = job.Realign.DType, OutputPath = output, Overwrite = true, Card = job.Card,
        },
    };

    /// <summary>Interpolation (<see cref="InterpolateJob"/>): θ_A + α·(θ_F − θ_A) on every tensor, as the paper merges the whole model.</summary>
    public static readonly SweepBaseline Interpolate = new()
    {
        Method = "interpolate", Title = "interpolation", Symbol = "α", LabelKey = 'a', Option = "interpolate-alpha",
        Settings = job => job.InterpolateAlpha, CheckSetting = a => float.IsFinite((float)a) ? null : "be finite numbers in float32",
        ReportFileName = InterpolateReport.FileName,
        Job = (job, alpha, output) => new InterpolateJob
        {
            Base = job.Realign.Base, Finetuned = job.Realign.Finetuned, Adapter = job.Realign.Adapter, Alpha = alpha,
            DType = job.Realign.DType, OutputPath = output, Overwrite = true, Card = job.Card,
        },
    };

    /// <summary>Every baseline, in plan order.</summary>
    public static readonly IReadOnlyList<SweepBaseline> All = [Resta, SafeLora, SafeDelta, Antidote, Interpolate];

    /// <summary>The baseline whose method is <paramref name="method"/>, or null (an IRR method or a control).</summary>
    public static SweepBaseline? Of(string method) => All.FirstOrDefault(b => b.Method == method);

    /// <summary>Whether <paramref name="method"/> names a baseline.</summary>
    public static bool IsBaseline(string method) => Of(method) is not null;

    /// <summary>
    /// The modules a weight-editing baseline works on: the realignment's (<c>--modules</c>), or for a LoRA fine-tune without
    /// them the adapter's targets, as <c>irr realign</c> chooses them; null (every module the inputs have) otherwise.
    /// </summary>
    public static IReadOnlyList<string>? Modules(SweepJob job)
    {
        if (job.Realign.Modules is not null || job.Realign.Adapter is null) return job.Realign.Modules;
        using var adapter = LoraAdapter.Open(job.Realign.Adapter);
        return RealignJob.AdapterTargets(adapter);
    }

    /// <summary>Checks every baseline's settings against the sweep (distinct, valid, LoRA-only ones with an adapter); the message is the sweep's.</summary>
    /// <exception cref="IrrException">A setting is refused ("sweep: resta-gamma lists a value twice").</exception>
    public static void Validate(SweepJob job)
    {
        foreach (var b in All)
        {
            var settings = b.Settings(job);
            foreach (double x in settings)
            {
                string? why = double.IsFinite(x) ? b.CheckSetting(x) : "be finite numbers";
                Validation.Require(why is null, job.Command, $"{b.Option} must {why}, not {x.ToString(CultureInfo.InvariantCulture)}");
            }
            Validation.Require(settings.Distinct().Count() == settings.Count, job.Command, $"{b.Option} lists a value twice");
            Validation.Require(settings.Count == 0 || !b.LoraOnly || job.Realign.Adapter is not null, job.Command,
                $"{b.Option} needs a LoRA fine-tune (adapter): {b.Title} is defined for LoRA");
        }
    }
}
