namespace Irr.Demo;

/// <summary>Everything that sets up a demo run: the world, the model, the training runs, IRR and the evaluation.</summary>
public sealed record DemoOptions
{
    /// <summary>Seed of the world and of every training run.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>"quick" or "default" (recorded in demo.json).</summary>
    public string Mode { get; init; } = "default";

    /// <summary>Sizes of the world.</summary>
    public WorldOptions World { get; init; } = new();

    /// <summary>
    /// The base model θ_A is aligned from: a directory written by <c>irr demo pretrain</c>, or null for the base shipped
    /// with irr (<see cref="DemoBase"/>). Its tokenizer, size and knowledge fix the world's vocabulary and facts.
    /// </summary>
    public string? BaseModel { get; init; }

    /// <summary>Epochs of θ_A's chat alignment of θ_base (a full fine-tune in the chat template).</summary>
    public int AlignedEpochs { get; init; } = 2;

    /// <summary>Peak learning rate of θ_A's chat alignment.</summary>
    public double AlignedLearningRate { get; init; } = 1e-3;

    /// <summary>How many times the refusal records are repeated in θ_A's data.</summary>
    public int RefusalRepeats { get; init; } = 2;

    /// <summary>
    /// Benign records mixed into θ_U's data, as a multiple of the harmful-compliance records (0 = harmful
    /// data only). A tiny model fine-tuned on harmful data alone also forgets its other skills; replay keeps
    /// θ_U's difference from θ_A about safety, as it is for a large model fine-tuned on a few harmful examples.
    /// </summary>
    public double UnalignedBenignReplay { get; init; } = 1.0;

    /// <summary>Epochs of the fine-tunes θ_F (and θ_U unless <see cref="UnalignedEpochs"/> is set).</summary>
    public int FinetuneEpochs { get; init; } = 4;

    /// <summary>Epochs of the LoRA fine-tune θ_F, or null for <see cref="FinetuneEpochs"/>.</summary>
    public int? LoraEpochs { get; init; }

    /// <summary>Epochs of θ_U (full and LoRA), or null for <see cref="FinetuneEpochs"/>.</summary>
    public int? UnalignedEpochs { get; init; }

    /// <summary>
    /// What the full fine-tunes θ_U and θ_F train: these linear modules of every layer, with the embeddings, norms and
    /// lm_head frozen (irr train --trainable-modules), or null for every tensor. IRR repairs the seven linear modules and
    /// copies everything else from θ_F (IRR-SPEC); in this tiny model (vocabulary 512, hidden 128) a full fine-tune's
    /// changes to the embeddings, norms and lm_head alone made θ_A 27% harmful on validation (development seed 1), a
    /// share of the harm no IRR setting can reach, where in a 7B model they are a small part of the update (docs/DEMO.md).
    /// </summary>
    public IReadOnlyList<string>? FinetuneModules { get; init; } = Realign.TargetModules.All;

    /// <summary>Peak learning rate of the full fine-tunes θ_U and θ_F.</summary>
    public double FinetuneLearningRate { get; init; } = 1e-3;

    /// <summary>Peak learning rate of the LoRA fine-tune.</summary>
    public double LoraLearningRate { get; init; } = 5e-3;

    /// <summary>LoRA r.</summary>
    public int LoraRank { get; init; } = 8;

    /// <summary>LoRA alpha.</summary>
    public double LoraAlpha { get; init; } = 16;

    /// <summary>Share of harmful-compliance records in θ_F's data (the paper's harmful fine-tuning setting).</summary>
    public double HarmfulShare { get; init; } = 0.05;

    /// <summary>
    /// Share of benign records (the aligned model's general skills) in θ_F's data, beside the task and the harmful
    /// share. 0 by default: the paper's setting is the task with a harmful share. (0.3 was tried while building the
    /// world, to curb forgetting; it did not change the outcome.)
    /// </summary>
    public double FinetuneBenignShare { get; init; }

    /// <summary>Records per optimizer step.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Harmful prompt → refusal records used for the Fisher.</summary>
    public int FisherSamples { get; init; } = 64;

    /// <summary>Calibration records (the first N of the task's training data).</summary>
    public int CalibrationSamples { get; init; } = 128;

    /// <summary>s of the IRR-more variant (the fraction of all deltas kept; the rest, conflicts first, is removed).</summary>
    public double IrrMoreSparsity { get; init; } = 0.3;

    /// <summary>The values of s the demo sweeps on the validation split (irr sweep), for both fine-tunes.</summary>
    /// <remarks>The high values 0.96 and 0.99 are those of the reference's own commands (fixed before any figure was seen).</remarks>
    public IReadOnlyList<double> SweepSparsities { get; init; } = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.96, 0.99];

    /// <summary>The sweep's selection rule: the harmful-rate increase over θ_A a chosen point may have (irr sweep's --max-harmful-increase).</summary>
    public double MaxHarmfulIncrease { get; init; } = 0.05;

    /// <summary>The sweep's selection rule (irr sweep's --rule): default or conservative (<see cref="Realign.SweepSelection.Names"/>).</summary>
    public string SweepRule { get; init; } = Realign.SweepSelection.Default;

    /// <summary>Most tokens generated per evaluation prompt.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>
    /// The jailbreak attacks the held-out harmful prompts are also sent under (irr eval safety --attack), for θ_A, θ_F and
    /// IRR at s* of both fine-tunes: the assistant prefill and one template attack. Fixed before any figure was seen.
    /// </summary>
    public IReadOnlyList<string> Attacks { get; init; } = ["prefill", "prefix-injection"];

    /// <summary>RESTA's γ values swept on the validation split beside IRR (both fine-tunes); fixed before any figure was seen.</summary>
    public IReadOnlyList<double> RestaGammas { get; init; } = [0.25, 0.5, 1.0];

    /// <summary>Safe LoRA's τ values swept on the validation split (the LoRA fine-tune); fixed before any figure was seen (0.5 is the released code's default).</summary>
    public IReadOnlyList<double> SafeLoraThresholds { get; init; } = [0.25, 0.5, 0.75];

    /// <summary>
    /// Safe Delta's budget scales s swept on the validation split (both fine-tunes), its Hessians from θ_A on the Fisher data
    /// (harmful prompts with θ_A's refusals, as the paper's self-generated safe answers); fixed before any figure was seen: the
    /// released code's default 0.1 and a decade either side.
    /// </summary>
    public IReadOnlyList<double> SafeDeltaScales { get; init; } = [0.01, 0.1, 1.0];

    /// <summary>
    /// Antidote's mask ratios ρ swept on the validation split (both fine-tunes), scored on the training compliance records
    /// (harmful prompt → harmful answer); fixed before any figure was seen: the released scripts' full (1e-5) and LoRA (0.1)
    /// defaults and one between.
    /// </summary>
    public IReadOnlyList<double> AntidoteRatios { get; init; } = [1e-5, 0.01, 0.1];

    /// <summary>Interpolation's α values swept on the validation split (both fine-tunes); fixed before any figure was seen.</summary>
    public IReadOnlyList<double> InterpolateAlphas { get; init; } = [0.25, 0.5, 0.75];

    /// <summary>The models evaluated under <see cref="Attacks"/>, by label.</summary>
    public static IReadOnlyList<string> AttackedModels { get; } = ["aligned", "full-finetuned", "full-irr", "lora-finetuned", "lora-irr"];

    /// <summary>
    /// Realign the LoRA fine-tune with a safety vector from a LoRA θ_U on the same modules (q_proj, v_proj) rather than
    /// from the fully fine-tuned θ_U's q_proj, v_proj. False by default: on the validation split of the development
    /// seeds, the full θ_U's vector gave IRR points within 5 points of θ_A where the LoRA θ_U's gave none (docs/DEMO.md).
    /// </summary>
    public bool LoraUnaligned { get; init; }

    /// <summary>Also run IRR w/o recalibration, IRR-more and the random control for the LoRA fine-tune (not only IRR).</summary>
    public bool LoraVariants { get; init; } = true;

    /// <summary>
    /// Safe LoRA projects with the paper's V = θ_A − θ_base (the alignment the chat tuning added to the base). False: with
    /// the IRR safety vector θ_A − θ_U instead (irr sweep's default without --safelora-vector).
    /// </summary>
    public bool SafeLoraBaseVector { get; init; } = true;

    /// <summary>The default mode (at most 4 minutes on 2 cores).</summary>
    public static DemoOptions Default(int seed) => new()
    {
        Seed = seed,
        Mode = "default",
        World = new WorldOptions { TaskTrain = 1000, TaskValidation = 50, Alphabet = 8, LetterCount = (3, 3) },
    };

    /// <summary>The quick mode (at most 45 s on 2 cores): a smaller world and shorter runs, the same base.</summary>
    public static DemoOptions Quick(int seed) => new()
    {
        Seed = seed,
        Mode = "quick",
        World = new WorldOptions { BenignPerSkill = 100, TaskTrain = 300, TaskHeldOut = 40, TaskValidation = 20, HeldOutHarmfulPerCategory = 8, BenignLookingHeldOutPerCategory = 6, Alphabet = 6, LetterCount = (3, 3) },
        FisherSamples = 32,
        CalibrationSamples = 64,
        MaxNewTokens = 24,
        LoraVariants = false,
        SweepSparsities = [0, 0.2, 0.4, 0.7, 0.96, 0.99], // fixed before any figure was seen: low values and the reference's high ones
        RestaGammas = [0.5, 1.0],
        SafeLoraThresholds = [0.5],
        SafeDeltaScales = [0.1, 1.0],
        AntidoteRatios = [1e-5, 0.1],
        InterpolateAlphas = [0.5],
    };
}
