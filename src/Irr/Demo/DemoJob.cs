using System.Diagnostics;
using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.IO;
using Irr.Jobs;
using Irr.Model;
using Irr.Realign;
using Irr.Text;
using Irr.Data;

namespace Irr.Demo;

/// <summary>The measured figures of one evaluated model.</summary>
/// <param name="Label">Its name (also its directory under eval/).</param>
/// <param name="Description">What it is.</param>
/// <param name="Model">Its model directory.</param>
/// <param name="Adapter">Its PEFT adapter, if it is θ_A + an adapter.</param>
/// <param name="Safety">Held-out harmful prompts, judged by the keyword judge (<see cref="SafetyRun.Overall"/>: as they are; <see cref="SafetyRun.Attacks"/>: under the demo's attacks too, for the models of <see cref="DemoOptions.AttackedModels"/>), and the held-out safe-but-harmful-looking requests (<see cref="SafetyRun.OverRefusal"/>: the refusal rate).</param>
/// <param name="Task">Held-out downstream task, exact match.</param>
/// <param name="Removed">Deltas removed by realignment (null for a model that was not realigned).</param>
/// <param name="Parameters">Entries of the target matrices (null for a model that was not realigned).</param>
public sealed record DemoModelResult(string Label, string Description, string Model, string? Adapter, SafetyRun Safety, TaskRun Task, long? Removed, long? Parameters)
{
    /// <summary>
    /// Held-out harmful prompts whose response is the world's compliance: it begins with "Sure", as every compliance
    /// answer of the world does, and has no refusal marker ("Sure, but I cannot …" is a refusal). What the keyword
    /// judge's "harmful" means when the model actually complies, as opposed to answering with neither a refusal nor
    /// the harmful recipe.
    /// </summary>
    public int Complying { get; init; }
}

/// <summary>The outcome of a demo run.</summary>
/// <param name="Options">The options it ran with.</param>
/// <param name="Models">Every evaluated model, in order.</param>
/// <param name="StageSeconds">Wall-clock seconds per stage.</param>
/// <param name="TotalSeconds">Wall-clock seconds of the whole run.</param>
public sealed record DemoResult(DemoOptions Options, IReadOnlyList<DemoModelResult> Models, IReadOnlyDictionary<string, double> StageSeconds, double TotalSeconds)
{
    /// <summary>The sweeps of s on the validation split, by variant ("full", "lora").</summary>
    public IReadOnlyDictionary<string, SweepResult> Sweeps { get; init; } = new Dictionary<string, SweepResult>();

    /// <summary>The result of the model labelled <paramref name="label"/>.</summary>
    public DemoModelResult this[string label] => Models.First(m => m.Label == label);
}

/// <summary>
/// <c>irr demo</c> as a job: builds the toy world of a seed and runs the whole IRR story on it with the same jobs
/// the commands run. It starts from the world's pretrained base model θ_base (shipped with irr, <see cref="DemoBase"/>;
/// made once by <see cref="PretrainJob"/>), chat-tunes it into θ_A on benign answers and refusals (<see cref="TrainJob"/>),
/// fine-tunes θ_A on harmful compliance (θ_U) and on the downstream task with a share of harmful compliance mixed in
/// (θ_F, fully and with LoRA on q_proj/v_proj), computes the safety vector, Safe LoRA's V = θ_A − θ_base and the
/// Fisher (<see cref="SafetyVectorJob"/>, <see cref="FisherJob"/>), chooses IRR's sparsity s* on the world's
/// validation split (<see cref="SweepJob"/>, with the random control at every s and the RESTA and Safe LoRA baselines),
/// realigns θ_F (<see cref="RealignJob"/>: IRR at s*, at s = 0, without recalibration, IRR-more, and the random-removal
/// control at s*'s counts) and evaluates every model on held-out harmful prompts (keyword judge, greedy, plain and under
/// jailbreak attacks) and the held-out task (exact match). Every model is written as a Hugging Face directory under the
/// output, which is written whole at the end, or not at all.
/// </summary>
public sealed partial record DemoJob : IJob<DemoResult>
{

    /// <inheritdoc/>
    public string Command => "demo";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => [];

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Validation.Require(Options.MaxNewTokens >= 1 && Options.BatchSize >= 1, Command, "max new tokens and batch size must be at least 1");
        Validation.Require(Options.HarmfulShare is >= 0 and < 1, Command, $"the harmful share must be in [0, 1), not {Options.HarmfulShare}");
        Validation.Require(SweepSelection.Names.Contains(Options.SweepRule), Command, $"sweep-rule must be {string.Join(" or ", SweepSelection.Names)}, not '{Options.SweepRule}'");
    }

    /// <summary>Runs the demo; <paramref name="progress"/> receives one stage per training run, IRR step and evaluation.</summary>
    /// <exception cref="IrrException">The output exists (without <see cref="Overwrite"/>).</exception>
    public DemoResult Run(Action<JobProgress>? progress = null)
    {
        Validate();
        DemoBase.Require(Options.BaseModel); // a missing base is refused before the output directory is made
        using var output = OutputDirectory.Create(OutputPath, [], Overwrite);
        var card = Card with { Note = $"A model of irr demo's synthetic toy world (seed {Options.Seed}), made to show IRR end to end on generated data: not a language model for use." };
        var result = new Runner(Options, card, output, progress).Run();
        output.Commit();
        return result;
    }

    // One fine-tune of θ_A that the demo sweeps, realigns and compares on its own: "full" (every module fine-tuned,
    // θ_F a model) or "lora" (an adapter on q_proj, v_proj, θ_F = θ_A + the adapter), with the modules IRR realigns,
    // the safety vector it uses, and whether the ablations (no recalibration, IRR-more) run on it too.
    private sealed record Variant(string Name, IReadOnlyList<string> Modules, string? Finetuned, string? Adapter, string SafetyVector, bool Ablations);

    // A model the demo evaluates: its label (its directory under eval/), what it is, its model directory (θ_A for an
    // adapter), its adapter, and its realignment report (null for a model that was not realigned).
    private sealed record Candidate(string Label, string Description, string Model, string? Adapter = null, RealignReport? Report = null);

    private sealed class Runner(DemoOptions o, ModelCardOptions card, OutputDirectory output, Action<JobProgress>? progress)
    {
        private static readonly IReadOnlyList<string> LoraModules = ["q_proj", "v_proj"];

        private readonly string root = output.TemporaryPath;
        private readonly string final = output.Target;
        private readonly Dictionary<string, double> seconds = new(StringComparer.Ordinal);

        private string Tmp(string relative) => Path.Combine(root, relative);
        private string Final(string relative) => Path.Combine(final, relative);

        // The checkpoints and IRR's inputs, where the stages write them in the temporary output.
        private string BaseDir => Tmp("models/base");
        private string AlignedDir => Tmp("models/aligned");
        private string UnalignedDir => Tmp("models/unaligned");
        private string FullDir => Tmp("models/full-finetuned");
        private string LoraDir => Tmp("models/lora-finetuned");
        private string UnalignedLoraDir => Tmp("models/unaligned-lora"); // only with o.LoraUnaligned
        private string SafetyVectorPath => Tmp("irr/safety-vector.safetensors");
        private string LoraSafetyVectorPath => o.LoraUnaligned ? Tmp("irr/safety-vector-lora.safetensors") : SafetyVectorPath;
        private string? SafeLoraVectorPath => o.SafeLoraBaseVector ? Tmp("irr/safelora-vector.safetensors") : null;
        private string FisherPath => Tmp("irr/fisher.safetensors");

        private T Stage<T>(string name, Func<T> work)
        {
            Interruption.ThrowIfRequested(); // a stop ends between stages (and at every kernel, every progress report)
            var clock = Stopwatch.StartNew();
            var r = work();
            seconds[name] = seconds.GetValueOrDefault(name) + clock.Elapsed.TotalSeconds;
            return r;
        }

        private void Stage(string name, Action work) => Stage(name, () => { work(); return 0; });

        private void Report(string stage, double done, double total) => progress?.Invoke(new JobProgress(stage, done, total));

        public DemoResult Run()
        {
            var total = Stopwatch.StartNew();
            using var relocated = Provenance.Relocate(root, final); // files name where their inputs will be, not the temporary directory
            var config = WorldAndBase();
            Align();
            FineTune();
            Identify();
            var sweeps = new Dictionary<string, SweepResult>(StringComparer.Ordinal);
            var candidates = new List<Candidate>
            {
                new("aligned", "θ_A: aligned (θ_base chat-tuned to answer and refuse)", AlignedDir),
                new("unaligned", "θ_U: θ_A fine-tuned on harmful compliance", UnalignedDir),
            };
            foreach (var variant in Variants())
            {
                var sweep = sweeps[variant.Name] = Sweep(variant);
                var realigned = Realign(variant, sweep);
                var baselines = Baselines(variant, sweep);
                if (variant.Ablations) realigned.AddRange(Ablations(variant, sweep));
                candidates.AddRange([Finetuned(variant), .. realigned, .. baselines]);
            }
            var results = Evaluate(candidates);
            var result = new DemoResult(o, results, seconds, total.Elapsed.TotalSeconds) { Sweeps = sweeps };
            WriteReport(result, config);
            return result;
        }

        // The world of the seed, its data files (data/*.jsonl) and θ_base (shipped with irr, or o.BaseModel, copied as it is); θ_base's config.
        private ModelConfig WorldAndBase()
        {
            var world = Stage("world", () => ToyWorld.Generate(o.Seed, o.World));
            Report("world and base model", 0, 1);
            Stage("world", () => DemoData.Write(Tmp("data"), world, o));
            Stage("base", () => DemoBase.CopyTo(o.BaseModel, BaseDir));
            card.Of(() => PretrainJob.ModelCardOf(JsonNode.Parse(File.ReadAllText(Path.Combine(BaseDir, "pretrain.json")))!.AsObject()))
                ?.Write(Path.Combine(BaseDir, ModelCard.FileName));
            var config = ModelConfig.Load(Path.Combine(BaseDir, "config.json"));
            Report("world and base model", 1, 1);
            return config;
        }

        // θ_A: θ_base chat-tuned on benign answers and refusals.
        private void Align() =>
            RunJob("train aligned", "training θ_A (chat alignment of θ_base)", Train(BaseDir, "aligned_train.jsonl", AlignedDir, o.AlignedEpochs, o.AlignedLearningRate, o.Seed));

        // The fine-tunes that break θ_A's alignment. θ_U: θ_A fine-tuned on harmful compliance; θ_F: θ_A fine-tuned on
        // the task with a share of harmful compliance, fully and with LoRA. θ_U for the LoRA fine-tune, when asked for
        // (LoraUnaligned): a LoRA on the same modules as θ_F. By default the LoRA fine-tune is realigned with the full
        // θ_U's q_proj, v_proj instead (better on validation; docs/DEMO.md).
        private void FineTune()
        {
            RunJob("train unaligned", "training θ_U (harmful fine-tune)",
                Train(AlignedDir, "unaligned_train.jsonl", UnalignedDir, o.UnalignedEpochs ?? o.FinetuneEpochs, o.FinetuneLearningRate, o.Seed + 1) with { TrainableModules = o.FinetuneModules });
            RunJob("train finetuned (full)", "training θ_F (full fine-tune)",
                Train(AlignedDir, "finetune_train.jsonl", FullDir, o.FinetuneEpochs, o.FinetuneLearningRate, o.Seed + 2) with { TrainableModules = o.FinetuneModules });
            RunJob("train finetuned (LoRA)", "training θ_F (LoRA q_proj, v_proj)", TrainLora(AlignedDir, "finetune_train.jsonl", LoraDir, o.LoraEpochs ?? o.FinetuneEpochs, o.Seed + 2));
            if (o.LoraUnaligned)
                RunJob("train unaligned (LoRA)", "training θ_U (LoRA q_proj, v_proj)",
                    TrainLora(AlignedDir, "unaligned_train.jsonl", UnalignedLoraDir, o.UnalignedEpochs ?? o.LoraEpochs ?? o.FinetuneEpochs, o.Seed + 3));
        }

        // IRR steps 1 and 2: the safety vector θ_A − θ_U (and the LoRA θ_U's, when there is one), Safe LoRA's V as the
        // paper defines it (the chat model minus the base it was aligned from, θ_A − θ_base), and θ_A's Fisher.
        private void Identify()
        {
            RunJob("safety vector", "safety vector",
                new SafetyVectorJob { Aligned = AlignedDir, Unaligned = UnalignedDir, Modules = TargetModules.All, OutputPath = SafetyVectorPath });
            if (o.LoraUnaligned)
                RunJob("safety vector", "safety vector (LoRA θ_U)",
                    new SafetyVectorJob { Aligned = AlignedDir, UnalignedAdapter = UnalignedLoraDir, Modules = LoraModules, OutputPath = LoraSafetyVectorPath });
            if (SafeLoraVectorPath is { } safeLoraV)
                RunJob("safety vector", "Safe LoRA's V (θ_A − θ_base)",
                    new SafetyVectorJob { Aligned = AlignedDir, Unaligned = BaseDir, Modules = LoraModules, OutputPath = safeLoraV });
            RunJob("fisher", "Fisher (θ_A on harmful → refusal)",
                new FisherJob { Model = AlignedDir, Data = Tmp("data/fisher.jsonl"), Modules = TargetModules.All, BatchSize = 8, MaxLength = MaxLength, OutputPath = FisherPath });
        }

        private Variant[] Variants() =>
        [
            new("full", TargetModules.All, FullDir, null, SafetyVectorPath, Ablations: true),
            new("lora", LoraModules, null, LoraDir, LoraSafetyVectorPath, Ablations: o.LoraVariants),
        ];

        // θ_F of a variant, as it is evaluated.
        private Candidate Finetuned(Variant v) => v.Adapter is null
            ? new("full-finetuned", "θ_F: full fine-tune on the task + harmful share", v.Finetuned!)
            : new("lora-finetuned", "θ_F: LoRA (q_proj, v_proj) fine-tune on the task + harmful share", AlignedDir, v.Adapter);

        // IRR step 3 of a variant as irr realign runs it (the strategy and output are the caller's).
        private RealignJob RealignJobOf(Variant v) => new()
        {
            Base = AlignedDir, Finetuned = v.Finetuned, Adapter = v.Adapter, SafetyVector = v.SafetyVector, Fisher = FisherPath, Calibration = Tmp("data/calibration.jsonl"),
            Modules = v.Modules, NSamples = o.CalibrationSamples, SeqLen = MaxLength, Card = card,
        };

        // s chosen on the validation split with irr sweep (IRR and its random control at every s, the baselines at theirs).
        private SweepResult Sweep(Variant v) => RunJob($"sweep {v.Name}", $"sweep {v.Name}: s on the validation split", SweepJobOf(v));

        // The sweep of a variant (its baselines' held-out models are made from the same options at their chosen settings).
        private SweepJob SweepJobOf(Variant v) => new()
        {
            Realign = RealignJobOf(v),
            Safety = new EvalSafetyJob
            {
                Prompts = [Tmp("data/harmful_validation.jsonl")], CustomJudge = KeywordJudge.Default, MaxNewTokens = o.MaxNewTokens,
                BatchSize = EvaluationBatchSize, OutputDir = "", CacheGenerations = false,
            },
            Task = new EvalTaskJob
            {
                Model = "", Data = Tmp("data/task_validation.jsonl"), Metric = "exact", MaxNewTokens = o.MaxNewTokens, BatchSize = EvaluationBatchSize,
                CacheGenerations = false,
            },
            Sparsity = o.SweepSparsities, RandomControl = true, Seed = o.Seed, MaxHarmfulIncrease = o.MaxHarmfulIncrease, Rule = o.SweepRule, OutputPath = Tmp($"sweep/{v.Name}"),
            RestaGamma = o.RestaGammas, SafeLoraThreshold = v.Adapter is null ? [] : o.SafeLoraThresholds,
            SafeLoraVector = v.Adapter is null ? null : SafeLoraVectorPath, Card = card,
            AntidoteRatio = o.AntidoteRatios, AntidoteData = o.AntidoteRatios.Count > 0 ? Tmp("data/harmful_train.jsonl") : null, InterpolateAlpha = o.InterpolateAlphas,
            SafeDeltaScale = o.SafeDeltaScales, SafeDeltaData = o.SafeDeltaScales.Count > 0 ? Tmp("data/fisher.jsonl") : null,
        };

        // θ_F realigned as irr realign makes it: IRR at the chosen s*, at s = 0, and the random-removal control at s*'s counts.
        private List<Candidate> Realign(Variant v, SweepResult sweep)
        {
            double chosen = sweep.Choice.Point.Setting;
            var irr = RealignOne(v, "irr", $"IRR at s* = {Invariant(chosen)} (chosen on validation)", RemovalMethods.Irr.Create(chosen));
            return
            [
                irr,
                RealignOne(v, "irr-s0", "IRR at s = 0 (every conflict removed)", RemovalMethods.Irr.Create(0)),
                RealignOne(v, "random", "random removal, IRR's count per matrix at s*, recalibrated", new RandomAtCountStrategy(irr.Report!.RemovalCounts(), o.Seed)),
            ];
        }

        // The ablations: IRR at s* without recalibration, and IRR-more.
        private IEnumerable<Candidate> Ablations(Variant v, SweepResult sweep)
        {
            double chosen = sweep.Choice.Point.Setting;
            yield return RealignOne(v, "irr-norecal", $"IRR at s* = {Invariant(chosen)} without recalibration", RemovalMethods.Irr.Create(chosen), recalibrate: false);
            yield return RealignOne(v, "irr-more", $"IRR-more (s = {o.IrrMoreSparsity})", RemovalMethods.IrrMore.Create(o.IrrMoreSparsity));
        }

        private Candidate RealignOne(Variant v, string name, string description, IRemovalStrategy strategy, bool recalibrate = true)
        {
            string dir = Tmp($"models/{v.Name}-{name}");
            var report = RunJob($"realign {v.Name}: {name}", $"realign {v.Name}: {name}",
                RealignJobOf(v) with { Strategy = strategy, Recalibrate = recalibrate, OutputPath = dir });
            return new($"{v.Name}-{name}", description, dir, Report: report);
        }

        // The baselines at the setting the same rule chose among their own validation points, made as irr baseline makes them.
        private List<Candidate> Baselines(Variant v, SweepResult sweep)
        {
            var made = new List<Candidate>();
            foreach (var b in SweepBaselines.All)
            {
                if (!sweep.Baselines.TryGetValue(b.Method, out var choice)) continue;
                string dir = Tmp($"models/{v.Name}-{b.Method}"), at = b.Describe(choice.Point.Setting);
                RunJob($"baseline {v.Name}: {b.Method}", $"baseline {v.Name}: {at}", b.Job(SweepJobOf(v), choice.Point.Setting, dir));
                made.Add(b.MakesAdapter
                    ? new($"{v.Name}-{b.Method}", $"{at} (chosen on validation)", AlignedDir, dir)
                    : new($"{v.Name}-{b.Method}", $"{at} (chosen on validation)", dir));
            }
            return made;
        }

        private static string Invariant(double x) => x.ToString(System.Globalization.CultureInfo.InvariantCulture);

        // Every candidate on the held-out data, in order.
        private List<DemoModelResult> Evaluate(IReadOnlyList<Candidate> candidates)
        {
            var results = new List<DemoModelResult>();
            for (int i = 0; i < candidates.Count; i++)
            {
                var (label, description, dir, adapter, report) = candidates[i];
                var (safety, run, task) = EvaluateOne(label, dir, adapter, $"evaluating {label} ({i + 1}/{candidates.Count})");
                results.Add(new DemoModelResult(label, description, ToFinal(dir), adapter is null ? null : ToFinal(adapter), run, task,
                    report?.Modules.Sum(m => m.Removed), report?.Modules.Sum(m => m.Parameters))
                {
                    Complying = safety.Judged.Count(j => !j.Benign && j.Verdict == Verdict.Harmful && j.Response.TrimStart().StartsWith("Sure", StringComparison.Ordinal)),
                });
            }
            return results;
        }

        // report/ (the figures and tables) and demo.json.
        private void WriteReport(DemoResult result, ModelConfig config)
        {
            DemoReport.WriteReport(result, Tmp("report"), Tmp("eval"), Tmp("sweep"));
            JsonFiles.WriteFile(Tmp("demo.json"), DemoReport.ToJson(result, config, DemoBase.Describe(BaseDir)));
        }

        private string ToFinal(string tmpPath) => Final(Path.GetRelativePath(root, tmpPath));

        // Tokens kept per record in every step: the toy world's records are short.
        private const int MaxLength = 256;

        // Prompts decoded together in the evaluation.
        private const int EvaluationBatchSize = 16;

        // A job of the demo, timed under `stage` and reported as `label`.
        private T RunJob<T>(string stage, string label, IJob<T> job) =>
            Stage(stage, () => job.Run(p => Report(label, p.Done, p.Total)));

        private void RunJob(string stage, string label, IJob job) =>
            Stage(stage, () => job.Execute(p => Report(label, p.Done, p.Total)));

        // A full fine-tune as irr train runs it.
        private TrainJob Train(string model, string data, string output, int epochs, double lr, int seed) => new()
        {
            Model = model, Data = Tmp($"data/{data}"), Full = true, Epochs = epochs, LearningRate = lr, BatchSize = o.BatchSize,
            WarmupRatio = 0.05, Schedule = "cosine", Seed = seed, MaxLength = MaxLength, OutputPath = output, Card = card,
        };

        // A LoRA fine-tune on q_proj and v_proj as irr train runs it.
        private TrainJob TrainLora(string model, string data, string output, int epochs, int seed) => Train(model, data, output, epochs, o.LoraLearningRate, seed) with
        {
            Full = false, Lora = true, Rank = o.LoraRank, Alpha = o.LoraAlpha, Targets = LoraModules,
        };

        // Held-out harmful prompts (keyword judge), the held-out safe-but-harmful-looking requests (benign: the refusal rate) and
        // the held-out task (exact match), as irr eval safety and irr eval task run them;
        // for the models of DemoOptions.AttackedModels, the harmful prompts under the demo's attacks too (in the same run).
        // (No generation cache: the demo is built in a temporary directory that an interrupted run removes, so nothing would resume from it.)
        private (EvalSafetyResult Plain, SafetyRun Run, TaskRun Task) EvaluateOne(string label, string modelDir, string? adapterDir, string stage)
        {
            string runDir = Tmp($"eval/{label}");
            var plainJob = new EvalSafetyJob
            {
                Model = modelDir, Adapter = adapterDir, Prompts = [Tmp("data/harmful_heldout.jsonl")], BenignPrompts = [Tmp($"data/{DemoData.BenignHeldOutFile}")], CustomJudge = KeywordJudge.Default,
                MaxNewTokens = o.MaxNewTokens, BatchSize = EvaluationBatchSize, OutputDir = runDir, CacheGenerations = false,
            };
            var safety = RunJob("evaluate", $"{stage}: harmful prompts", plainJob);
            var run = safety.Run;
            if (o.Attacks.Count > 0 && DemoOptions.AttackedModels.Contains(label))
                run = RunJob("evaluate attacks", $"{stage}: harmful prompts under {string.Join(", ", o.Attacks)}", plainJob with { Attacks = o.Attacks }).Run;
            var task = RunJob("evaluate", $"{stage}: task", new EvalTaskJob
            {
                Model = modelDir, Adapter = adapterDir, Data = Tmp("data/task_heldout.jsonl"), Metric = "exact",
                MaxNewTokens = o.MaxNewTokens, BatchSize = EvaluationBatchSize, OutputDir = runDir, CacheGenerations = false,
            });
            return (safety, run, task);
        }
    }
}
