using System.CommandLine;
using Irr.IO;
using Irr.Model;
using Irr.Text;

namespace Irr.Cli;

/// <summary>
/// <c>irr train</c>: fine-tune a model on a data set, fully (a new Hugging Face model directory) or
/// with LoRA (a PEFT adapter directory), with the loss on answer tokens only.
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var model = CommandSupport.ModelOption();
        var data = new Option<string>("--data") { Description = "records: JSON array or JSONL of {instruction, input, output} or {prompt, response}", Required = true };
        var full = new Option<bool>("--full") { Description = "train every weight; writes a full model" };
        var lora = new Option<bool>("--lora") { Description = "train LoRA matrices only; writes a PEFT adapter" };
        var rank = new Option<int>("--rank") { Description = "LoRA rank r", DefaultValueFactory = _ => 8 };
        var alpha = new Option<double>("--alpha") { Description = "LoRA alpha", DefaultValueFactory = _ => 16 };
        var targets = new Option<string>("--targets") { Description = "LoRA target modules, comma-separated", DefaultValueFactory = _ => "q_proj,v_proj" };
        var rslora = new Option<bool>("--rslora") { Description = "scale LoRA by alpha/√r instead of alpha/r" };
        var epochs = new Option<int>("--epochs") { Description = "passes over the data", DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--lr") { Description = "peak learning rate (default 2e-5 full, 2e-4 LoRA)" };
        var batchSize = CommandSupport.BatchSizeOption(8, "records");
        var accumulation = new Option<int>("--grad-accum") { Description = "micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
        var maxLength = CommandSupport.MaxLengthOption(1024);
        var warmup = new Option<double>("--warmup-ratio") { Description = "fraction of the steps spent warming up", DefaultValueFactory = _ => 0.03 };
        var schedule = new Option<string>("--schedule") { Description = "cosine, linear or constant", DefaultValueFactory = _ => "cosine" };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW weight decay (default 0)" };
        var clip = new Option<double>("--max-grad-norm") { Description = "gradient clipping norm, 0 for none", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int>("--seed") { Description = "seed of the data order and the LoRA initialisation", DefaultValueFactory = _ => 42 };
        var system = CommandSupport.SystemPromptOption();
        var dtype = new Option<string?>("--dtype") { Description = "storage type of the output: bfloat16, float16 or float32 (default: the model's torch_dtype; float32 for adapters)" };
        var output = new Option<string>("--output", "-o") { Description = "output directory (a model for --full, an adapter for --lora)", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output directory if it exists" };
        var command = new Command("train", "Fine-tune a model on (prompt → answer) records, fully or with LoRA")
        {
            model, data, full, lora, rank, alpha, targets, rslora, epochs, lr, batchSize, accumulation, maxLength, warmup, schedule, weightDecay, clip, seed, system, dtype, output, overwrite,
        };
        command.Validators.Add(result =>
        {
            if ((result.GetResult(full) is not null) == (result.GetResult(lora) is not null)) result.AddError("give exactly one of --full and --lora");
        });
        command.SetAction(parseResult =>
        {
            string modelDir = parseResult.GetValue(model)!, outDir = parseResult.GetValue(output)!;
            bool isLora = parseResult.GetValue(lora);
            var options = new TrainingOptions
            {
                Epochs = parseResult.GetValue(epochs),
                LearningRate = parseResult.GetResult(lr) is null ? (isLora ? 2e-4 : 2e-5) : parseResult.GetValue(lr),
                BatchSize = parseResult.GetValue(batchSize),
                GradientAccumulationSteps = parseResult.GetValue(accumulation),
                WarmupRatio = parseResult.GetValue(warmup),
                Schedule = parseResult.GetValue(schedule) switch
                {
                    "cosine" => LearningRateSchedule.Cosine,
                    "linear" => LearningRateSchedule.Linear,
                    "constant" => LearningRateSchedule.Constant,
                    var s => throw new IrrException($"--schedule must be cosine, linear or constant, not '{s}'"),
                },
                WeightDecay = parseResult.GetValue(weightDecay),
                MaxGradNorm = parseResult.GetValue(clip),
                Seed = parseResult.GetValue(seed),
            };
            if (options.Epochs < 1 || options.BatchSize < 1 || options.GradientAccumulationSteps < 1)
                throw new IrrException("--epochs, --batch-size and --grad-accum must be at least 1");
            // Refuse a bad output before spending the time to train.
            OutputDirectory.Create(outDir, [modelDir], parseResult.GetValue(overwrite)).Dispose();

            var (weights, tokenizer) = CommandSupport.Load(modelDir, null);
            using var _ = weights;
            var records = TrainingRecord.Load(parseResult.GetValue(data)!);
            var examples = CommandSupport.Encode(tokenizer, records, SystemPrompt.Resolve(parseResult.GetValue(system)), parseResult.GetValue(maxLength))
                .Select(e => new TrainingExample(e.InputIds, e.Labels)).ToList();
            TensorDType? storage = parseResult.GetValue(dtype) is { } d
                ? (TensorDTypes.TryParseTorch(d, out var t) ? t : throw new IrrException($"--dtype must be bfloat16, float16 or float32, not '{d}'"))
                : null;

            Transformer transformer;
            LoraWeights? adapter = null;
            ParameterSet? parameters = null;
            if (isLora)
            {
                var modules = parseResult.GetValue(targets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                adapter = LoraWeights.Create(weights.Config, parseResult.GetValue(rank), parseResult.GetValue(alpha), modules, parseResult.GetValue(rslora), options.Seed);
                transformer = new Transformer(weights, adapter);
            }
            else
            {
                parameters = ParameterSet.LoadAll(weights);
                transformer = new Transformer(parameters);
            }
            var trainer = new Trainer(transformer);
            int total = Trainer.TotalSteps(examples.Count, options);
            double lastLoss = double.NaN;
            CommandSupport.WithProgress(parseResult, $"training ({total} steps)", total, report =>
                trainer.Train(examples, options, p =>
                {
                    lastLoss = p.Loss;
                    report(1, p.Tokens);
                }));
            parseResult.InvocationConfiguration.Error.WriteLine($"final step loss {lastLoss:F4}");

            if (adapter is not null)
                adapter.Save(outDir, Path.GetFullPath(modelDir), storage ?? TensorDType.F32, [modelDir], parseResult.GetValue(overwrite));
            else
                parameters!.Save(outDir, storage ?? weights.Config.TorchDType ?? weights.Model.Tensors.First().DType, modelDir, parseResult.GetValue(overwrite));
            parseResult.InvocationConfiguration.Error.WriteLine($"saved {(adapter is null ? "model" : "adapter")} to {outDir}");
            return 0;
        });
        return command;
    }
}
