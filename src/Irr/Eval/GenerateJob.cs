using System.Text.Json.Nodes;
using Irr.Data;
using Irr.IO;
using Irr.Jobs;
using Irr.Model;

namespace Irr.Eval;

/// <summary>
/// <c>irr generate</c> as a job: answers to the prompts of a prompt file (<see cref="PromptSet.Load(string)"/>, the same
/// formats as <c>irr eval safety</c>), each formatted with the model's chat template, written as JSONL (one
/// <c>{index, prompt, response, new_tokens, finish_reason}</c> object per line; a thinking model's reasoning apart from
/// the response in <c>reasoning</c> (<see cref="ChatResponse.Parts"/>); a failed generation of a serving
/// engine has <c>"error": REASON</c>, an empty response and finish_reason "error"; generated ids outside the tokenizer's
/// vocabulary, decoded as "", are counted in <c>unknown_token_ids</c>; with <see cref="OutputIds"/> the token ids too).
/// With <see cref="NoChatTemplate"/> a prompt is its text as is. Greedy unless
/// <see cref="Temperature"/> is above 0. The prompts are read before the model is loaded; an existing output file is
/// refused unless <see cref="Overwrite"/>. With a serving engine (<see cref="EngineSettings"/> or <see cref="Engine"/>),
/// the answers come from it and the model directory is read only for its tokenizer, chat template and
/// EOS ids. Local answers are kept as they come in OUTPUT.generation-cache.jsonl (<see cref="Model.GenerationCache"/>), a
/// serving engine's in OUTPUT.engine-cache.jsonl: an interrupted run, run again, generates only the answers it lacks.
/// </summary>
[Job("generate", Help = "Generate answers to prompts with the model's chat template, or to raw text (--no-chat-template), greedy by default, written as JSONL",
    OutputExtension = ".jsonl")]
public sealed record GenerateJob : IJob<IReadOnlyList<ChatResponse>>
{
    /// <summary>The model directory.</summary>
    [Option(OptionHelp.Model, Kind = OptionKind.Input, Hub = true, Required = true, From = ArtifactKind.Model)]
    public required string Model { get; init; }

    /// <summary>A PEFT LoRA adapter directory merged into <see cref="Model"/> on the fly, or null.</summary>
    [Option(OptionHelp.Adapter, Kind = OptionKind.Input, Hub = true)]
    public string? Adapter { get; init; }

    /// <summary>The prompt file.</summary>
    [Option($"prompts: {OptionHelp.PromptFormats}", Kind = OptionKind.Input, HubFile = true, Required = true)]
    public required string Prompts { get; init; }

    /// <summary>The system prompt: none, llama2 or literal text (<see cref="Text.SystemPrompt.Resolve"/>).</summary>
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

    /// <summary>Most tokens generated per prompt (0 generates nothing).</summary>
    [Option("most tokens generated per prompt")]
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>0 decodes greedily; above 0, logits are divided by it and sampled.</summary>
    [Option("0 decodes greedily; above 0 samples")]
    public float Temperature { get; init; }

    /// <summary>Nucleus sampling: keep the most likely tokens up to this probability mass, in (0, 1] (1: off).</summary>
    [Option("nucleus sampling: keep the most likely tokens up to this probability mass (1: off)")]
    public float TopP { get; init; } = 1f;

    /// <summary>Sample among the k most likely tokens (0: off).</summary>
    [Option("sample among the k most likely tokens (0: off)")]
    public int TopK { get; init; }

    /// <summary>The sampling seed.</summary>
    [Option("sampling seed")]
    public int Seed { get; init; }

    /// <summary>Prompts decoded together.</summary>
    [Option("prompts per batch")]
    public int BatchSize { get; init; } = 8;

    /// <summary>
    /// Write the token ids in each record: <c>prompt_token_ids</c> (the prompt as encoded, a prefill's ids included) and
    /// <c>token_ids</c> (the generated ids, a final EOS included), as vLLM's <c>RequestOutput.prompt_token_ids</c> and
    /// <c>CompletionOutput.token_ids</c>. Local generation only.
    /// </summary>
    [Option("write prompt_token_ids and token_ids in each record (vLLM's names; local generation only)")]
    public bool OutputIds { get; init; }

    /// <summary>The responses file to write (.jsonl).</summary>
    [Option("the responses, one JSON object per line", Name = "output", Alias = "-o", Kind = OptionKind.Output, Required = true, Fingerprinted = false)]
    public required string OutputPath { get; init; }

    /// <summary>Replace an existing <see cref="OutputPath"/> (<see cref="OutputPolicy"/>).</summary>
    [Option(OptionHelp.Overwrite, Fingerprinted = false)]
    public bool Overwrite { get; init; }

    /// <summary>The serving-engine options as given (<see cref="Engine"/> is the in-memory alternative).</summary>
    [Options]
    public EngineSettings? EngineSettings { get; init; }

    /// <summary>The serving engine's answer cache; null for OUTPUT.engine-cache.jsonl next to <see cref="OutputPath"/> (the extension replaced).</summary>
    [Option("serving engine: answer cache file (default OUTPUT.engine-cache.jsonl, next to --output)", Kind = OptionKind.Path, Fingerprinted = false)]
    public string? EngineCache { get; init; }

    /// <summary>
    /// Generate through this serving engine instead of loading the weights, or null (library callers; the command line
    /// gives <see cref="EngineSettings"/>). Its answer cache defaults to <c>OUTPUT.engine-cache.jsonl</c> next to
    /// <see cref="OutputPath"/> (the extension replaced).
    /// </summary>
    public EngineOptions? Engine { get; init; }

    /// <summary>The serving engine generated with (its cache null for OUTPUT.engine-cache.jsonl): <see cref="Engine"/>, or the one <see cref="EngineSettings"/> describe, or null (<see cref="EngineSettings.Resolve"/>).</summary>
    /// <exception cref="IrrException">The engine options contradict each other.</exception>
    public EngineOptions? ResolveEngine() => EngineSettings.Resolve(Command, Engine, EngineSettings, EngineCache, keyShared: false);

    /// <summary>
    /// Keep each answer of local generation as it comes in <see cref="GenerationCachePath"/> (<see cref="Model.GenerationCache"/>),
    /// so that an interrupted run resumes; false for a run whose output is thrown away when it fails (the demo's).
    /// </summary>
    public bool CacheGenerations { get; init; } = true;

    /// <summary>Where local generation keeps its answers: OUTPUT.generation-cache.jsonl next to <see cref="OutputPath"/> (the extension replaced).</summary>
    public string GenerationCachePath => Path.ChangeExtension(OutputPath, ".generation-cache.jsonl");

    /// <inheritdoc/>
    public string Command => "generate";

    /// <inheritdoc/>
    public IReadOnlyList<string> Inputs => Provenance.Given(Model, Adapter, Prompts);

    /// <inheritdoc/>
    public string? Output => OutputPath;

    /// <inheritdoc/>
    public void Validate()
    {
        Chat.Validate(Command, NoChatTemplate);
        Validation.Require(MaxNewTokens >= 0, Command, $"max-new-tokens must not be negative, not {MaxNewTokens}");
        Validation.Require(TopP is > 0 and <= 1, Command, $"top-p must be in (0, 1], not {TopP}");
        Validation.RequireAtLeast(Command, "batch-size", BatchSize, 1);
        var engine = ResolveEngine();
        engine?.Validate(Command, hasAdapter: Adapter is not null, hasFullModel: Adapter is null);
        Validation.Require(!(OutputIds && engine is not null), Command, "output-ids needs local generation (a serving engine's answers come as text)");
        EngineOptions.RequireLocalDefault(engine, Command, Temperature == 0, "temperature", "a serving engine is asked greedily");
        EngineOptions.RequireLocalDefault(engine, Command, TopP == 1, "top-p", "a serving engine is asked greedily");
        EngineOptions.RequireLocalDefault(engine, Command, TopK == 0, "top-k", "a serving engine is asked greedily");
        EngineOptions.RequireLocalDefault(engine, Command, BatchSize == 8, "batch-size", "the server batches on its own");
    }


    /// <summary>
    /// Reads the prompts, answers them (stage "generating", in tokens; with an engine "generating (MODEL)", in responses)
    /// and writes the responses; returns them in prompt order (failed ones with <see cref="ChatResponse.Error"/>).
    /// </summary>
    /// <exception cref="IrrException">An option is invalid, the prompts or the model are missing or malformed, or the serving engine refuses the requests.</exception>
    public IReadOnlyList<ChatResponse> Run(Action<JobProgress>? progress = null)
    {
        Validate();
        OutputPolicy.RequireNewFile(OutputPath, Overwrite);
        var users = PromptSet.Load(Prompts, allowEmpty: NoChatTemplate).Records.Select(r => r.Prompt).ToList();
        var requests = ChatGeneration.Requests(users, Text.SystemPrompt.Resolve(SystemPrompt));
        IReadOnlyList<ChatResponse> outputs;
        if (ResolveEngine() is { } served)
        {
            using var engine = EngineSession.Open(served, Model, served.Cache ?? Path.ChangeExtension(OutputPath, ".engine-cache.jsonl"), Command, Adapter, Path.ChangeExtension(OutputPath, ".engine-serve.log"),
                Text.PretrainedTokenizer.Load(Model, Adapter).AsRawText(NoChatTemplate).WithTemplateArgs(Chat.Args));
            outputs = engine.Generate(requests, MaxNewTokens, progress);
        }
        else
        {
            using var chat = ChatModel.Open(Model, Adapter, NoChatTemplate, Chat.Args);
            var options = chat.Greedy(MaxNewTokens, BatchSize) with { Temperature = Temperature, TopP = TopP, TopK = TopK, Seed = Seed };
            var stage = ProgressStage.Start(progress, "generating", (double)users.Count * MaxNewTokens);
            var cache = CacheGenerations ? GenerationCache.Open(GenerationCachePath, Model, Adapter) : null;
            outputs = ChatGeneration.Respond(chat.Transformer, chat.Tokenizer, requests, options, n => stage.Advance(n, n), cache);
        }
        AtomicFile.WriteJsonLines(OutputPath, Enumerable.Range(0, users.Count), i =>
        {
            var (reasoning, answer) = outputs[i].Parts;
            var line = new JsonObject
            {
                ["index"] = i,
                ["prompt"] = users[i],
                ["response"] = answer,
                ["new_tokens"] = outputs[i].NewTokens,
                ["finish_reason"] = outputs[i].FinishReason,
            };
            if (reasoning is not null) line["reasoning"] = reasoning;
            if (outputs[i].Error is { } error) line["error"] = error;
            if (outputs[i].UnknownTokens > 0) line["unknown_token_ids"] = outputs[i].UnknownTokens;
            if (OutputIds)
            {
                line["prompt_token_ids"] = Ids(outputs[i].PromptTokenIds);
                line["token_ids"] = Ids(outputs[i].TokenIds);
            }
            return line;
        });
        return outputs;
    }

    private static JsonArray Ids(int[]? ids) => new([.. (ids ?? []).Select(id => (JsonNode)id)]);
}
