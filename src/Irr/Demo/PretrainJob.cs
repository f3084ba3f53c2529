using System.Diagnostics;
using System.Text.Json.Nodes;
using Irr.IO;
using Irr.Jobs;
using Irr.Model;
using Irr.Text;

namespace Irr.Demo;

/// <summary>The size of the demo's base model and how it is pretrained (<see cref="PretrainJob"/>).</summary>
public sealed record PretrainOptions
{
    /// <summary>Seed of the corpus, the initialisation and the data order.</summary>
    [Option("seed of the corpus, the initialisation and the data order")]
    public int Seed { get; init; } = 1;

    /// <summary>Documents drawn from <see cref="BaseCorpus"/> (each seen once).</summary>
    [Option("corpus documents, each trained on once")]
    public int Documents { get; init; } = 600_000;

    /// <summary>Documents the tokenizer is trained on (the first N).</summary>
    public int TokenizerDocuments { get; init; } = 5_000;

    /// <summary>Tokenizer vocabulary (special tokens + 256 bytes + merges).</summary>
    [Option("tokenizer vocabulary")]
    public int VocabSize { get; init; } = 512;

    /// <summary>hidden_size.</summary>
    [Option("hidden_size")]
    public int HiddenSize { get; init; } = 128;

    /// <summary>intermediate_size.</summary>
    [Option("intermediate_size")]
    public int IntermediateSize { get; init; } = 384;

    /// <summary>num_hidden_layers.</summary>
    [Option("num_hidden_layers")]
    public int Layers { get; init; } = 4;

    /// <summary>num_attention_heads (= num_key_value_heads).</summary>
    [Option("num_attention_heads")]
    public int Heads { get; init; } = 4;

    /// <summary>Documents per optimizer step.</summary>
    [Option("documents per optimizer step")]
    public int BatchSize { get; init; } = 64;

    /// <summary>Peak learning rate (linear warm-up, cosine decay to 0).</summary>
    [Option("peak learning rate (cosine)", Name = "lr")]
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Share of the steps spent warming up.</summary>
    public double WarmupRatio { get; init; } = 0.02;

    /// <summary>AdamW weight decay on the matrices.</summary>
    public double WeightDecay { get; init; } = 0.1;

    /// <summary>max_position_embeddings, and the most tokens kept per document.</summary>
    public int MaxPositions { get; init; } = 256;
}

/// <summary>What <see cref="PretrainJob"/> did.</summary>
/// <param name="Steps">Optimizer steps.</param>
/// <param name="Tokens">Tokens trained on.</param>
/// <param name="FinalLoss">Mean loss of the last 100 steps (nats per token).</param>
/// <param name="Seconds">Wall-clock seconds of the whole job.</param>
/// <param name="Parameters">Parameters of the model.</param>
public sealed record PretrainResult(int Steps, long Tokens, double FinalLoss, double Seconds, long Parameters);

/// <summary>
/// <c>irr demo pretrain</c>: trains the demo world's base model θ_base from scratch on the plain-text corpus
/// <see cref="BaseCorpus"/> (no chat template) and writes it as a Hugging Face model directory (config.json,
/// model.safetensors in float32, tokenizer.json, tokenizer_config.json with the Llama-2 chat template the demo's chat
/// models use, special_tokens_map.json, generation_config.json) with <c>pretrain.json</c>, its provenance. It is run once;
/// the result is shipped with irr, and <c>irr demo</c> starts from it.
/// </summary>
[Job("demo pretrain", Help = "Pretrain the demo world's base model on its plain-text corpus (run once; irr demo ships and starts from the result)")]
public sealed record PretrainJob : IJob<PretrainResult>
{
    /// <summary>The model directory to write.</summary>
    [Option("the base model directory to write", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>Replace the output directory if it exists.</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <summary>The model and training settings (the command line gives the seed, the sizes, the batch size and the learning rate).</summary>
    [Options]
    public PretrainOptions Options { get; init; } = new();

    /// <summary>The output's model card (<c>--no-model-card</c>, <see cref="ModelCardOf"/>).</summary>
    [Options]
    public ModelCardOptions Card { get; init; } = new();

    /// <inheritdoc/>
    public string Command => "demo pretrain";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => [];

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        var o = Options;
        Validation.Require(o.Documents >= 1 && o.TokenizerDocuments >= 1 && o.BatchSize >= 1, Command, "documents and batch size must be at least 1");
        Validation.Require(o.HiddenSize >= 1 && o.Heads >= 1 && o.HiddenSize % o.Heads == 0 && (o.HiddenSize / o.Heads) % 2 == 0, Command,
            "hidden size must be a multiple of the heads with an even head dimension");
        Validation.Require(o.VocabSize > 259, Command, "the vocabulary must hold the 3 special tokens and the 256 bytes");
        Validation.Require(o.LearningRate > 0, Command, "the learning rate must be positive");
    }

    /// <summary>The base model's config.json for a vocabulary of <paramref name="vocab"/> tokens.</summary>
    public static JsonObject ConfigJson(PretrainOptions o, int vocab) => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["model_type"] = "llama",
        ["hidden_size"] = o.HiddenSize,
        ["intermediate_size"] = o.IntermediateSize,
        ["num_hidden_layers"] = o.Layers,
        ["num_attention_heads"] = o.Heads,
        ["num_key_value_heads"] = o.Heads,
        ["vocab_size"] = vocab,
        ["max_position_embeddings"] = o.MaxPositions,
        ["rms_norm_eps"] = 1e-5,
        ["rope_theta"] = 10000.0,
        ["tie_word_embeddings"] = false,
        ["bos_token_id"] = 1,
        ["eos_token_id"] = 2,
        ["hidden_act"] = "silu",
        ["initializer_range"] = 0.02,
        ["torch_dtype"] = "float32",
    };

    /// <summary>Pretrains and writes the base model; <paramref name="progress"/> advances once per optimizer step.</summary>
    /// <exception cref="IrrException">The output exists (without <see cref="Overwrite"/>).</exception>
    public PretrainResult Run(Action<JobProgress>? progress = null)
    {
        Validate();
        var clock = Stopwatch.StartNew();
        var o = Options;
        OutputDirectory.Create(OutputPath, [], Overwrite).Dispose();

        var documents = BaseCorpus.Documents(o.Seed, o.Documents).ToList();
        progress?.Invoke(new JobProgress("training the tokenizer", 0, 1));
        var texts = documents.Take(o.TokenizerDocuments)
            .Concat(ToyWorld.Refusals)
            .Append("[INST] [/INST] <<SYS>>\n\n<</SYS>>\n\n");
        var bpe = BpeTrainer.Train(texts, new BpeTrainerOptions { VocabSize = o.VocabSize });
        string tokenizerJson = bpe.ToTokenizerJson();
        var tokenizer = new PretrainedTokenizer(Tokenizer.FromJson(tokenizerJson), TokenizerConfig.FromJson(TokenizerFiles.ConfigJson(o.MaxPositions).ToJsonString()));
        int bos = 1, eos = 2;
        var examples = new List<TrainingExample>(documents.Count);
        long tokens = 0;
        progress?.Invoke(new JobProgress("tokenizing the corpus", 0, documents.Count, 0, "documents"));
        foreach (string d in documents)
        {
            Interruption.ThrowIfRequested();
            var ids = tokenizer.Encode(d);
            int n = Math.Min(ids.Length + 2, o.MaxPositions);
            var seq = new int[n];
            seq[0] = bos;
            Array.Copy(ids, 0, seq, 1, n - 2);
            seq[n - 1] = eos;
            tokens += n;
            examples.Add(new TrainingExample(seq, seq));
        }

        var config = ModelConfig.Parse(ConfigJson(o, tokenizer.Tokenizer.VocabSize).ToJsonString(), Path.Combine(OutputPath, "config.json"));
        var parameters = ModelInit.Random(config, o.Seed);
        var training = new TrainingOptions
        {
            Epochs = 1, LearningRate = o.LearningRate, BatchSize = o.BatchSize, WarmupRatio = o.WarmupRatio,
            Schedule = LearningRateSchedule.Cosine, WeightDecay = o.WeightDecay, MaxGradNorm = 1.0, Seed = o.Seed,
        };
        int total = Trainer.TotalSteps(examples.Count, training);
        var stage = ProgressStage.Start(progress, $"pretraining θ_base ({total} steps)", total);
        var recent = new Queue<double>();
        new Trainer(new Transformer(parameters)).Train(examples, training, p =>
        {
            recent.Enqueue(p.Loss);
            if (recent.Count > 100) recent.Dequeue();
            stage.Advance(1, p.Tokens);
        });
        double finalLoss = recent.Average();
        long parameterCount = parameters.Tensors.Values.Sum(t => (long)t.Length);
        var result = new PretrainResult(total, tokens, finalLoss, clock.Elapsed.TotalSeconds, parameterCount);

        var specs = config.ExpectedTensors().Select(t => new TensorSpec(t.Name, TensorDType.F32, t.Shape)).ToList();
        using (var writer = ModelWriter.Open(new ModelTarget(OutputPath, [], Overwrite, null, TensorDType.F32), config, specs,
                   [.. DemoBase.Files.Where(f => f != "config.json" && f != "model.safetensors")]))
        {
            foreach (var s in specs) writer.Write(s.Name, parameters[s.Name]);
            TokenizerFiles.Write(writer.TemporaryPath, tokenizerJson, o.MaxPositions);
            var record = new JsonObject
            {
                ["command"] = "irr demo pretrain",
                ["irr_version"] = Provenance.Version,
                ["options"] = System.Text.Json.JsonSerializer.SerializeToNode(o),
                ["documents"] = documents.Count,
                ["tokens"] = tokens,
                ["steps"] = total,
                ["parameters"] = parameterCount,
                ["final_loss"] = finalLoss,
                ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
                ["threads"] = Tensors.ThreadTeam.DefaultThreads,
                ["cpu"] = CpuName(),
                ["vector_width_bits"] = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? 512 : 256,
            };
            JsonFiles.WriteFile(writer.PathOf("pretrain.json"), record);
            writer.Commit(Card.Of(() => ModelCardOf(record)));
        }
        return result;
    }

    /// <summary>
    /// The model card of the demo world's base model, from its <c>pretrain.json</c> <paramref name="record"/>: no
    /// <c>base_model</c> (trained from scratch), <c>library_name: transformers</c>, the pretraining options, steps and
    /// tokens, and a note that it is a toy world's model. <c>irr demo</c> writes it into its copy of the base too.
    /// </summary>
    public static ModelCard ModelCardOf(JsonObject record)
    {
        var settings = new List<(string, string)> { ("method", "pretrain") };
        if (record["options"] is JsonObject options)
            settings.AddRange(options.Select(o => (JobSchema.Kebab(o.Key), o.Value?.ToJsonString() ?? "null")));
        foreach (string key in (string[])["documents", "tokens", "steps", "parameters"])
            if (record[key] is { } value) settings.Add((key, value.ToJsonString()));
        return new ModelCard(null, "transformers", "pretrain", "pretraining from scratch on the toy world's plain-text corpus (irr demo pretrain)", null, settings)
        {
            Note = "The base model of irr demo's synthetic toy world, pretrained on its generated corpus: not a language model for use.",
        };
    }

    /// <summary>The processor's model name (Linux /proc/cpuinfo), or the architecture.</summary>
    public static string CpuName()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int i and >= 0)
                    return line[(i + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }
}

/// <summary>The tokenizer files of the demo world's models: a byte-level BPE with the Llama-2 chat template.</summary>
public static class TokenizerFiles
{
    /// <summary>Writes tokenizer.json, tokenizer_config.json (chat template, BOS/EOS), special_tokens_map.json and generation_config.json into <paramref name="dir"/>.</summary>
    public static void Write(string dir, string tokenizerJson, int modelMaxLength)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizerJson);
        JsonFiles.WriteFile(Path.Combine(dir, "tokenizer_config.json"), ConfigJson(modelMaxLength));
        JsonFiles.WriteFile(Path.Combine(dir, "special_tokens_map.json"),
            new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>" });
        JsonFiles.WriteFile(Path.Combine(dir, "generation_config.json"),
            new JsonObject { ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["do_sample"] = false });
    }

    /// <summary>tokenizer_config.json: a fast tokenizer with BOS/EOS/UNK, no automatic special tokens, and the Llama-2 chat template.</summary>
    public static JsonObject ConfigJson(int modelMaxLength) => new()
    {
        ["tokenizer_class"] = "PreTrainedTokenizerFast",
        ["bos_token"] = "<s>",
        ["eos_token"] = "</s>",
        ["unk_token"] = "<unk>",
        ["pad_token"] = null,
        ["add_bos_token"] = false,
        ["add_eos_token"] = false,
        ["clean_up_tokenization_spaces"] = false,
        ["model_max_length"] = modelMaxLength,
        ["chat_template"] = ChatTemplate.Llama2Chat,
    };
}
