using System.CommandLine;
using Irr.Jobs;
using Irr.Model;

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
        var data = new Option<string>("--data") { Description = $"records: {OptionHelp.Records}", Required = true };
        var full = new Option<bool>("--full") { Description = "train every weight; writes a full model" };
        var lora = new Option<bool>("--lora") { Description = "train LoRA matrices only; writes a PEFT adapter" };
        var rank = new Option<int>("--rank") { Description = "LoRA rank r", DefaultValueFactory = _ => 8 };
        var alpha = new Option<double>("--alpha") { Description = "LoRA alpha", DefaultValueFactory = _ => 16 };
        var targets = new Option<string>("--targets") { Description = "LoRA target modules, comma-separated", DefaultValueFactory = _ => "q_proj,v_proj" };
        var trainable = new Option<string?>("--trainable-modules") { Description = "--full: train only these linear modules of every layer, comma-separated (embeddings, norms and lm_head frozen); default: every tensor" };
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
        var noChatTemplate = CommandSupport.NoChatTemplateOption();
        var dtype = new Option<string?>("--dtype") { Description = "storage type of the output: bfloat16, float16 or float32 (default: the model's torch_dtype; float32 for adapters)" };
        var output = new Option<string>("--output", "-o") { Description = "output directory (a model for --full, an adapter for --lora)", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the output directory if it exists" };
        TrainJob Build(ParseResult r) => new()
        {
            Model = r.GetValue(model)!,
            Data = r.GetValue(data)!,
            Full = r.GetValue(full),
            Lora = r.GetValue(lora),
            Rank = r.GetValue(rank),
            Alpha = r.GetValue(alpha),
            Targets = r.GetValue(targets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            TrainableModules = r.GetValue(trainable)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            RsLora = r.GetValue(rslora),
            Epochs = r.GetValue(epochs),
            LearningRate = r.GetResult(lr) is null ? null : r.GetValue(lr),
            BatchSize = r.GetValue(batchSize),
            GradAccum = r.GetValue(accumulation),
            MaxLength = r.GetValue(maxLength),
            WarmupRatio = r.GetValue(warmup),
            Schedule = r.GetValue(schedule)!,
            WeightDecay = r.GetValue(weightDecay),
            MaxGradNorm = r.GetValue(clip),
            Seed = r.GetValue(seed),
            SystemPrompt = r.GetValue(system)!,
            NoChatTemplate = r.GetValue(noChatTemplate),
            DType = r.GetValue(dtype),
            OutputPath = r.GetValue(output)!,
            Overwrite = r.GetValue(overwrite),
        };

        var command = new JobCommand("train", "Fine-tune a model on (prompt → answer) records, fully or with LoRA", Build)
        {
            model, data, full, lora, rank, alpha, targets, trainable, rslora, epochs, lr, batchSize, accumulation, maxLength, warmup, schedule, weightDecay, clip, seed, system, noChatTemplate, dtype, output, overwrite,
        };
        command.Validators.Add(result =>
        {
            if ((result.GetResult(full) is not null) == (result.GetResult(lora) is not null)) result.AddError("give exactly one of --full and --lora");
        });
        command.SetAction(parseResult =>
        {
            var job = Build(parseResult);
            var result = CommandSupport.Run(parseResult, job);
            var err = parseResult.InvocationConfiguration.Error;
            err.WriteLine($"final step loss {result.FinalLoss:F4}");
            err.WriteLine($"saved {(result.Adapter ? "adapter" : "model")} to {job.OutputPath}");
            return 0;
        });
        return command;
    }
}
