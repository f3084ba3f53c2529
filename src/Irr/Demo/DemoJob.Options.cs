using Irr.Jobs;

namespace Irr.Demo;

/// <summary><c>irr demo</c>'s options: the schema of its command line (<see cref="JobSchema"/>) and the settings they select.</summary>
[Job("demo", Help = "Run IRR end to end on a synthetic toy world: align the shipped base model, break it by fine-tuning, choose s on a validation split (irr sweep), realign, evaluate on held-out data")]
public sealed partial record DemoJob
{
    private readonly DemoOptions? options;

    /// <summary>The smaller world of <see cref="DemoOptions.Quick"/> instead of <see cref="DemoOptions.Default"/>.</summary>
    [Option("a smaller world and fewer sweep points: about 35 s instead of about 80 s on 2 cores")]
    public bool Quick { get; init; }

    /// <summary>The seed of <see cref="Options"/> (<see cref="DemoOptions.Seed"/>).</summary>
    [Option("seed of the splits, the data order, the alignment and fine-tuning runs and LoRA's initialisation (the base and its knowledge are fixed)")]
    public int Seed { get; init; } = 1;

    /// <summary>The output directory.</summary>
    [Option("output directory", Name = "output", Alias = "-o", Kind = OptionKind.Output, Fingerprinted = false)]
    public string OutputPath { get; init; } = "irr-demo";

    /// <summary>Replace the output directory if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <summary>
    /// The base model of <see cref="Options"/> (<see cref="DemoOptions.BaseModel"/>): a directory of irr demo pretrain, or
    /// null for the shipped one. Not an <see cref="OptionKind.Input"/>: <see cref="DemoBase.Require"/> checks it, saying what a base is.
    /// </summary>
    [Option("the base model to align (a directory of irr demo pretrain); default: the base shipped with irr", Name = "base")]
    public string? BaseModel { get; init; }

    /// <summary>The sweeps' selection rule (<see cref="DemoOptions.SweepRule"/>, irr sweep's --rule).</summary>
    [Option("the sweeps' selection rule (irr sweep --rule): default or conservative", HelpName = "default|conservative")]
    public string SweepRule { get; init; } = Irr.Realign.SweepSelection.Default;

    /// <summary>The model cards of the demo's models (<c>--no-model-card</c>): every model and adapter under models/ carries one, saying it is a toy world's.</summary>
    [Options]
    public IO.ModelCardOptions Card { get; init; } = new();

    /// <summary>
    /// The world, model, training, IRR and evaluation settings: as given (library callers), or else those that
    /// <see cref="Quick"/>, <see cref="Seed"/>, <see cref="BaseModel"/> and <see cref="SweepRule"/> select (<see cref="DemoOptions.Quick"/> or
    /// <see cref="DemoOptions.Default"/> with the base).
    /// </summary>
    public DemoOptions Options
    {
        get => options ?? (Quick ? DemoOptions.Quick(Seed) : DemoOptions.Default(Seed)) with { BaseModel = BaseModel, SweepRule = SweepRule };
        init => options = value;
    }
}
