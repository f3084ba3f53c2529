using Irr.IO;
using Irr.Jobs;
using Irr.Text;
using Irr.Data;

namespace Irr.Model;

/// <summary>What <see cref="TrainJob"/> did.</summary>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="FinalLoss">The mean loss of the last step (nats per labelled token).</param>
/// <param name="Adapter">Whether a PEFT adapter (LoRA) rather than a full model was written.</param>
public sealed record TrainResult(int Steps, double FinalLoss, bool Adapter);

/// <summary>
/// Fine-tuning as a job (<c>irr train</c>): AdamW on (prompt → answer) records with the loss on answer tokens only
/// (<see cref="Trainer"/>), either every weight (a new Hugging Face model directory) or LoRA matrices (a PEFT adapter
/// directory). Hyper-parameters and their defaults follow Hugging Face Trainer where it has them.
/// </summary>
[Job("train", Help = "Fine-tune a model on (prompt → answer) records, fully or with LoRA", Produces = ArtifactKind.Model, ProducesOnlyWith = "full")]
public sealed record TrainJob : IJob<TrainResult>
{
    /// <summary>The model to start from (a Hugging Face model directory).</summary>
    [Option(OptionHelp.Model, Kind = OptionKind.Input, Hub = true, Required = true)]
    public required string Model { get; init; }

    /// <summary>The training records (any record format of <c>docs/formats.md</c>).</summary>
    [Option("records: " + OptionHelp.Records, Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string Data { get; init; }

    /// <summary>Train every weight; writes a full model.</summary>
    [Option("train every weight; writes a full model")]
    public bool Full { get; init; }

    /// <summary>Train LoRA matrices only; writes a PEFT adapter.</summary>
    [Option("train LoRA matrices only; writes a PEFT adapter")]
    public bool Lora { get; init; }

    /// <summary>LoRA rank r.</summary>
    [Option("LoRA rank r")]
    public int Rank { get; init; } = 8;

    /// <summary>LoRA alpha.</summary>
    [Option("LoRA alpha")]
    public double Alpha { get; init; } = 16;

    /// <summary>LoRA target modules, or null for the family's default (<see cref="DefaultTargets"/>).</summary>
    [Option("LoRA target modules, comma-separated, or all (PEFT's all-linear) (default: PEFT's for the model type: q_proj,v_proj; qkv_proj for phi3)",
        Parser = typeof(Realign.TargetModules.OptionParser))]
    public IReadOnlyList<string>? Targets { get; init; }

    /// <summary>
    /// The LoRA targets PEFT picks when <c>target_modules</c> is not given (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING):
    /// q_proj, v_proj for llama, mistral, qwen2, qwen3, gemma2 and gemma3_text. PEFT has no entry for phi3 (it asks for
    /// target_modules); irr takes qkv_proj, the fused projection that holds q_proj and v_proj.
    /// </summary>
    public static IReadOnlyList<string> DefaultTargets(ModelConfig config) => config.FusedProjections ? ["qkv_proj"] : ["q_proj", "v_proj"];

    /// <summary>
    /// With <see cref="Full"/>: train only these linear modules (q_proj … down_proj) of every layer, with the embeddings,
    /// norms and lm_head frozen (LLaMA-Factory's freeze tuning; <c>requires_grad = False</c> on the rest); null trains every tensor.
    /// </summary>
    [Option("--full: train only these linear modules of every layer, comma-separated, or all (embeddings, norms and lm_head frozen); default: every tensor",
        Parser = typeof(Realign.TargetModules.OptionParser))]
    public IReadOnlyList<string>? TrainableModules { get; init; }

    /// <summary>Scale LoRA by alpha/√r instead of alpha/r.</summary>
    [Option("scale LoRA by alpha/√r instead of alpha/r", Name = "rslora")]
    public bool RsLora { get; init; }

    /// <summary>Passes over the data.</summary>
    [Option("passes over the data")]
    public int Epochs { get; init; } = 1;

    /// <summary>Peak learning rate, or null for 2e-5 (full) or 2e-4 (LoRA).</summary>
    [Option("peak learning rate (default 2e-5 full, 2e-4 LoRA)", Name = "lr")]
    public double? LearningRate { get; init; }

    /// <summary>Records per micro-batch.</summary>
    [Option("records per batch")]
    public int BatchSize { get; init; } = 8;

    /// <summary>Micro-batches per optimizer step.</summary>
    [Option("micro-batches per optimizer step")]
    public int GradAccum { get; init; } = 1;

    /// <summary>Tokens kept per record (the first N).</summary>
    [Option("keep the first N tokens of each record")]
    public int MaxLength { get; init; } = 1024;

    /// <summary>Fraction of the steps spent warming up.</summary>
    [Option("fraction of the steps spent warming up")]
    public double WarmupRatio { get; init; } = 0.03;

    /// <summary>cosine, linear or constant.</summary>
    [Option("cosine, linear or constant")]
    public string Schedule { get; init; } = "cosine";

    /// <summary>AdamW weight decay.</summary>
    [Option("AdamW weight decay")]
    public double WeightDecay { get; init; }

    /// <summary>Gradient clipping norm, 0 for none.</summary>
    [Option("gradient clipping norm, 0 for none")]
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Seed of the data order and the LoRA initialisation (Hugging Face Trainer's default, 42).</summary>
    [Option("seed of the data order and the LoRA initialisation")]
    public int Seed { get; init; } = 42;

    /// <summary>The system prompt: none, llama2 or literal text.</summary>
    [Option(OptionHelp.SystemPrompt)]
    public string SystemPrompt { get; init; } = "none";

    /// <summary>
    /// Tokenize the records' text as is, without the chat template (<c>--no-chat-template</c>, for base models and
    /// completion-style data; <see cref="Text.PretrainedTokenizer.RawText"/>).
    /// </summary>
    [Option(OptionHelp.NoChatTemplate)]
    public bool NoChatTemplate { get; init; }

    /// <summary>The chat template's extra variables (<c>--template-arg KEY=VALUE</c>, <see cref="Text.ChatTemplateOptions"/>).</summary>
    [Options]
    public Text.ChatTemplateOptions Chat { get; init; } = new();

    /// <summary>Storage type of the output: bfloat16, float16 or float32, or null for the model's torch_dtype (float32 for adapters).</summary>
    [Option("storage type of the output: bfloat16, float16 or float32 (default: the model's torch_dtype; float32 for adapters)", Name = "dtype")]
    public string? DType { get; init; }

    /// <summary>The model card written with the output (<c>--no-model-card</c>, <see cref="ModelCard"/>).</summary>
    [Options]
    public ModelCardOptions Card { get; init; } = new();

    /// <summary>The output directory (a model for <see cref="Full"/>, an adapter for <see cref="Lora"/>).</summary>
    [Option("output directory (a model for --full, an adapter for --lora)", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>Replace the output directory if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <inheritdoc/>
    public string Command => "train";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => [Model, Data];

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Chat.Validate(Command, NoChatTemplate);
        Validation.Require(Full != Lora, Command, "give exactly one of full and lora");
        Validation.Require(Epochs >= 1 && BatchSize >= 1 && GradAccum >= 1, Command, "epochs, batch-size and grad-accum must be at least 1");
        Validation.RequireAtLeast(Command, "max-length", MaxLength, 1);
        Validation.Require(!Lora || (Rank >= 1 && Targets is not { Count: 0 }), Command, "LoRA needs a rank of at least 1 and at least one target module");
        Validation.Require(TrainableModules is null || Full, Command, "trainable-modules applies to full fine-tuning (LoRA trains its targets only)");
        Validation.Require(TrainableModules is null || (TrainableModules.Count > 0 && TrainableModules.All(Realign.TargetModules.All.Contains)), Command,
            $"trainable-modules must be among {string.Join(", ", Realign.TargetModules.All)} (those of the model's family), or all");
        Options();
        StorageType();
    }

    /// <summary>The trainer's options.</summary>
    /// <exception cref="IrrException"><see cref="Schedule"/> is not cosine, linear or constant.</exception>
    public TrainingOptions Options() => new()
    {
        Epochs = Epochs,
        LearningRate = LearningRate ?? (Lora ? 2e-4 : 2e-5),
        BatchSize = BatchSize,
        GradientAccumulationSteps = GradAccum,
        WarmupRatio = WarmupRatio,
        Schedule = Schedule switch
        {
            "cosine" => LearningRateSchedule.Cosine,
            "linear" => LearningRateSchedule.Linear,
            "constant" => LearningRateSchedule.Constant,
            _ => throw new IrrException($"{Command}: schedule must be cosine, linear or constant, not '{Schedule}'"),
        },
        WeightDecay = WeightDecay,
        MaxGradNorm = MaxGradNorm,
        Seed = Seed,
    };

    private TensorDType? StorageType() => DType is { } d
        ? (TensorDTypes.TryParseTorch(d, out var t) ? t : throw new IrrException($"{Command}: dtype must be bfloat16, float16 or float32, not '{d}'"))
        : null;

    /// <summary>
    /// The output's model card: the trained model as the base (its licence), <c>peft</c> for <see cref="Lora"/>, and the
    /// training settings with the data file's name and SHA-256. <c>base_model_relation</c>: <c>adapter</c> for LoRA (an
    /// adapter loaded on the model), <c>finetune</c> for full fine-tuning.
    /// </summary>
    public ModelCard ModelCardOf(int steps)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        var options = Options();
        List<(string, string)> settings =
        [
            ("method", Lora ? "lora" : "full"),
            ("steps", steps.ToString(invariant)),
            ("learning rate", options.LearningRate.ToString("R", invariant)),
            ("data", Path.GetFileName(Data)),
            ("data SHA-256", ContentHash.Compute(Data)),
        ];
        if (Lora) settings.InsertRange(1, [("r", Rank.ToString(invariant)), ("alpha", Alpha.ToString(invariant))]);
        return new ModelCard(ModelCard.BaseModelOf(Model), Lora ? "peft" : "transformers", "train", Lora ? "LoRA fine-tuning (irr train --lora)" : "full fine-tuning (irr train --full)",
            null, settings, CardLicense.Of(Model))
        {
            BaseModelRelation = Lora ? ModelCard.Adapter : ModelCard.Finetune, Datasets = ModelCard.DatasetOf(Data) is { } data ? [data] : [],
        };
    }

    /// <summary>Trains and writes the model or adapter; <paramref name="progress"/> advances once per optimizer step.</summary>
    /// <exception cref="IrrException">The model or data is missing or malformed, or the output exists.</exception>
    public TrainResult Run(Action<JobProgress>? progress = null)
    {
        Validate();
        var options = Options();
        var storage = StorageType();
        // Refuse a bad output before spending the time to train.
        OutputDirectory.Create(OutputPath, [Model], Overwrite).Dispose();

        var tokenizer = PretrainedTokenizer.Load(Model).AsRawText(NoChatTemplate).WithTemplateArgs(Chat.Args);
        using var weights = CheckpointWeights.Open(Model);
        string? system = Text.SystemPrompt.Resolve(SystemPrompt);
        var examples = TrainingRecord.Load(Data).Select(r => ChatPrompt.Encode(tokenizer, r, system, MaxLength))
            .Select(e => new TrainingExample(e.InputIds, e.Labels)).ToList();

        LoraWeights? adapter = null;
        ParameterSet? parameters = null;
        Transformer transformer;
        if (Lora)
        {
            adapter = LoraWeights.Create(weights.Config, Rank, Alpha, Targets is null ? DefaultTargets(weights.Config) : Realign.TargetModules.For(weights.Config, Targets), RsLora, options.Seed);
            transformer = new Transformer(weights, adapter);
        }
        else
        {
            parameters = ParameterSet.LoadAll(weights);
            transformer = new Transformer(parameters);
        }
        var trainable = TrainableModules is null ? null : Realign.TargetModules.WeightNames(weights.Config, TrainableModules).ToHashSet(StringComparer.Ordinal);
        var trainer = new Trainer(transformer, trainable is null ? null : trainable.Contains);
        int total = Trainer.TotalSteps(examples.Count, options);
        var stage = ProgressStage.Start(progress, $"training ({total} steps)", total);
        double lastLoss = double.NaN;
        trainer.Train(examples, options, p =>
        {
            lastLoss = p.Loss;
            stage.Advance(1, p.Tokens);
        });

        if (adapter is not null)
            adapter.Save(OutputPath, Provenance.PathOf(Model), storage ?? TensorDType.F32, [Model], Overwrite, Card.Of(() => ModelCardOf(total)));
        else
            parameters!.Save(OutputPath, storage ?? weights.Config.TorchDType ?? weights.Model.Tensors.First().DType, Model, Overwrite, Card.Of(() => ModelCardOf(total)));
        return new TrainResult(total, lastLoss, adapter is not null);
    }
}
