using Irr.IO;
using Irr.Jobs;

namespace Irr.Realign;

/// <summary>
/// IRR step 1 as a job (<c>irr safety-vector</c>): the safety vector <c>v = W_A − W_U</c> of every target weight,
/// written as float32 safetensors under the full Hugging Face names (IRR-SPEC step 1).
/// </summary>
[Job("safety-vector", Help = "IRR step 1: the safety vector v = W_aligned − W_unaligned for the target modules",
    OutputExtension = ".safetensors", Produces = ArtifactKind.SafetyVector)]
public sealed record SafetyVectorJob : IJob<int>
{
    /// <summary>The aligned model θ_A (a Hugging Face model directory).</summary>
    [Option("the aligned model θ_A (a Hugging Face model directory)", Kind = OptionKind.Input, Hub = true, Required = true)]
    public required string Aligned { get; init; }

    /// <summary>The unaligned model θ_U as a model directory (θ_A fine-tuned on harmful answers); or give <see cref="UnalignedAdapter"/>.</summary>
    [Option("the unaligned model θ_U: θ_A fine-tuned on harmful answers (a model directory)", Kind = OptionKind.Input, Hub = true)]
    public string? Unaligned { get; init; }

    /// <summary>θ_U as a PEFT LoRA adapter on <see cref="Aligned"/>; or give <see cref="Unaligned"/>.</summary>
    [Option("or θ_U as a PEFT LoRA adapter on --aligned", Kind = OptionKind.Input, Hub = true)]
    public string? UnalignedAdapter { get; init; }

    /// <summary>Target modules M, in forward order (<see cref="TargetModules.Parse(string?)"/>).</summary>
    [Option("target modules: a comma-separated list (q_proj,v_proj …) or all", Parser = typeof(TargetModules.OptionParser))]
    public IReadOnlyList<string> Modules { get; init; } = TargetModules.All;

    /// <summary>The safety-vector file to write (.safetensors).</summary>
    [Option("the safety vector file (.safetensors)", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>Replace <see cref="OutputPath"/> if it exists (<see cref="OutputPolicy"/>).</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <inheritdoc/>
    public string Command => "safety-vector";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => [Aligned, Unaligned ?? UnalignedAdapter!];

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Validation.Require((Unaligned is null) != (UnalignedAdapter is null), Command, "give exactly one of unaligned and unaligned-adapter");
        Validation.Require(Modules.Count > 0 && Modules.All(TargetModules.All.Contains), Command, $"modules must be among {string.Join(", ", TargetModules.All)}");
        Validation.RequireSafetensorsName(Command, OutputPath);
    }

    /// <summary>The metadata block of the safetensors file: what was subtracted from what, for which modules.</summary>
    public Dictionary<string, string> Metadata() => new()
    {
        ["format"] = "pt",
        ["irr"] = "safety-vector",
        ["aligned"] = Provenance.PathOf(Aligned),
        ["unaligned"] = Provenance.PathOf(Unaligned ?? UnalignedAdapter!),
        ["modules"] = string.Join(",", Modules),
    };

    /// <summary>Computes and writes the safety vector, one tensor at a time; returns the number of tensors written.</summary>
    /// <exception cref="IrrException">A model is missing or malformed, the two do not share an architecture, or a weight is not finite.</exception>
    public int Run(Action<JobProgress>? progress = null)
    {
        Validate();
        OutputPolicy.RequireNewFile(OutputPath, Overwrite);
        var metadata = Metadata();
        // What later runs check the file against (InputChecks): the content of θ_A and θ_U.
        if (ModelFingerprint.Of(Aligned) is { } fa) metadata[InputChecks.AlignedFingerprintKey] = fa;
        if ((Unaligned is not null ? ModelFingerprint.Of(Unaligned) : ModelFingerprint.Of(Aligned, UnalignedAdapter)) is { } fu) metadata[InputChecks.UnalignedFingerprintKey] = fu;
        using var a = CheckpointWeights.Open(Aligned);
        using var u = Unaligned is not null ? CheckpointWeights.Open(Unaligned) : CheckpointWeights.Open(Aligned, UnalignedAdapter);
        InputChecks.SafetyVectorInputs(Command, Aligned, Unaligned, UnalignedAdapter);
        var modules = TargetModules.For(a.Config, Modules);
        metadata["modules"] = string.Join(",", modules);
        int total = a.Config.NumHiddenLayers * modules.Count;
        var stage = ProgressStage.Start(progress, "safety vector", total);
        SafetyVector.Compute(a, u, modules, OutputPath, metadata, _ => stage.Advance());
        return total;
    }
}
