using Irr.IO;
using Irr.Text;

namespace Irr.Model;

/// <summary>One generated answer.</summary>
/// <param name="Text">
/// The answer decoded without special tokens (and without the final EOS), as the text it adds after the prompt
/// (<see cref="Tokenizer.DecodeContinuation"/>: a leading space the tokenizer puts in its first token is kept); empty when <see cref="Error"/> is set.
/// </param>
/// <param name="NewTokens">Tokens generated, including a final EOS.</param>
/// <param name="Eos">True when generation ended on an EOS id, false when it hit the token limit.</param>
public sealed record ChatResponse(string Text, int NewTokens, bool Eos)
{
    /// <summary>Why there is no answer (a serving engine that failed after its retries, or whose reply could not be read); null for an answer.</summary>
    public string? Error { get; init; }

    /// <summary>The prompt's token ids (with a prefill's), as vLLM's <c>RequestOutput.prompt_token_ids</c>; null when not known (a serving engine).</summary>
    public int[]? PromptTokenIds { get; init; }

    /// <summary>The generated token ids (a final EOS included), as vLLM's <c>CompletionOutput.token_ids</c>; null when not known (a serving engine).</summary>
    public int[]? TokenIds { get; init; }

    /// <summary>Generated ids outside the tokenizer's vocabulary (a padded embedding's rows), which decode to "".</summary>
    public int UnknownTokens { get; init; }

    /// <summary>
    /// The reasoning a serving engine gave apart from the answer (vLLM's <c>message.reasoning_content</c> with a
    /// <c>--reasoning-parser</c>), then <see cref="Text"/> is the answer alone; null otherwise.
    /// </summary>
    public string? Reasoning { get; init; }

    /// <summary>
    /// The answer and its reasoning apart, what evaluations judge and record: <see cref="Reasoning"/> as the server gave it,
    /// else <see cref="ThinkBlock.Split"/> of <see cref="Text"/> (a thinking model's <c>&lt;think&gt;…&lt;/think&gt;answer</c>).
    /// </summary>
    public (string? Reasoning, string Answer) Parts => Reasoning is not null ? (Reasoning, Text) : ThinkBlock.Split(Text);

    /// <summary>"eos" or "length", as transformers' finish reasons; "error" when <see cref="Error"/> is set.</summary>
    public string FinishReason => Error is not null ? "error" : Eos ? "eos" : "length";

    /// <summary>A failed generation: no text, no tokens, and the reason.</summary>
    public static ChatResponse Failed(string reason) => new("", 0, false) { Error = reason };
}

/// <summary>
/// Answers to user messages: each is formatted with the model's chat template
/// (<see cref="ChatPrompt.Render(PretrainedTokenizer, string, string?)"/>), encoded, generated with <see cref="Generation.Generate"/> and decoded.
/// What <c>irr generate</c>, <c>irr eval</c> and the demo share.
/// </summary>
public static class ChatGeneration
{
    /// <summary>The answers, in the order of <paramref name="users"/>. <paramref name="progress"/> gets the tokens produced per decoding step.</summary>
    /// <exception cref="IrrException">The model has no chat template.</exception>
    public static IReadOnlyList<ChatResponse> Respond(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<string> users, string? systemPrompt,
        GenerationOptions options, Action<int>? progress = null) =>
        Respond(model, tokenizer, Requests(users, systemPrompt), options, progress);

    /// <summary>The conversations [system?, user] of <paramref name="users"/> (<see cref="ChatPrompt.Messages"/>), for a model or a serving engine to answer.</summary>
    public static IReadOnlyList<ChatRequest> Requests(IReadOnlyList<string> users, string? systemPrompt) =>
        users.Select(u => new ChatRequest(ChatPrompt.Messages(u, systemPrompt))).ToList();

    /// <summary>
    /// The answers to whole conversations, in order: each is rendered with the chat template and its generation prompt
    /// (<see cref="ChatPrompt.Render(PretrainedTokenizer, IEnumerable{ChatMessage})"/>) and encoded; a
    /// <see cref="ChatRequest.Prefill"/> is encoded on its own (as an answer is, IRR-SPEC "Formatting") and appended, so
    /// generation continues the answer from it. The text of such an answer is the prefill as given and the text the
    /// continuation adds after prompt and prefill (<see cref="Tokenizer.DecodeContinuation"/>). <paramref name="progress"/> gets the tokens produced per decoding step.
    /// </summary>
    /// <remarks>
    /// With a generation cache (the commands' internal overload), answers it holds for these prompts under these options are not generated again
    /// (<see cref="Generation.Generate"/>: a batch is decoded unless all its answers are held), and each new answer is
    /// appended to it as its batch ends; when a stop is requested (<see cref="Interruption"/>), how many answers the
    /// cache keeps is noted (<see cref="Interruption.Keep"/>).
    /// </remarks>
    /// <exception cref="IrrException">The model has no chat template, or the template refuses a conversation.</exception>
    /// <exception cref="OperationCanceledException">A stop was requested.</exception>
    public static IReadOnlyList<ChatResponse> Respond(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<ChatRequest> requests,
        GenerationOptions options, Action<int>? progress = null) => Respond(model, tokenizer, requests, options, progress, null);

    /// <summary>As <see cref="Respond(Transformer, PretrainedTokenizer, IReadOnlyList{ChatRequest}, GenerationOptions, Action{int}?)"/>, with a generation cache: answers it holds are not generated again, and new ones are appended as their batch ends.</summary>
    internal static IReadOnlyList<ChatResponse> Respond(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<ChatRequest> requests,
        GenerationOptions options, Action<int>? progress, GenerationCache? cache)
    {
        var prefills = requests.Select(r => r.Prefill is null ? [] : tokenizer.Encode(r.Prefill)).ToList();
        var rendered = requests.Select(r => ChatPrompt.EncodePrompt(tokenizer, r.Messages)).ToList();
        var encoded = requests.Select((r, i) => (IReadOnlyList<int>)[.. rendered[i], .. prefills[i]]).ToList();
        if (encoded.FindIndex(p => p.Count == 0) is var empty and >= 0)
            throw new IrrException($"prompt {empty}: empty, and the tokenizer adds no BOS, so there is no token to generate from");
        WarnBeyondContext(model.Config.MaxPositionEmbeddings, encoded, options.MaxNewTokens);
        var keys = cache is null ? null : encoded.Select((p, i) => cache.Key(p, options, i)).ToList();
        IReadOnlyList<int[]> outputs;
        try
        {
            outputs = cache is null ? Generation.Generate(model, encoded, options, progress)
                : Generation.Generate(model, encoded, options, progress, i => cache.Get(keys![i], options), (i, ids) => cache.Add(keys![i], ids));
        }
        catch (OperationCanceledException) when (cache is not null)
        {
            GenerationCache.NoteKept(keys!.Count(cache.Contains), keys!.Count, cache.Path);
            throw;
        }
        return outputs.Select((ids, i) =>
        {
            bool eos = ids.Length > 0 && options.EosTokenIds.Contains(ids[^1]);
            // The prefill as given, then what generation adds after prompt and prefill (as a serving engine's answer is built).
            string text = (requests[i].Prefill ?? "") + tokenizer.Tokenizer.DecodeContinuation(encoded[i], eos ? ids[..^1] : ids, skipSpecialTokens: true, out int unknown);
            return new ChatResponse(text, ids.Length, eos) { PromptTokenIds = [.. encoded[i]], TokenIds = ids, UnknownTokens = unknown };
        }).ToList();
    }

    // A prompt longer than max_position_embeddings is refused, as vLLM refuses one longer than max_model_len (whose default
    // is that value): positions the model was never trained on, and a cost that grows with the square of the length, so
    // that one hostile record (a 16 MB prompt) could hold the machine for hours. Without the key, IRR_MAX_PROMPT_TOKENS
    // (32,768) bounds it. One warning when prompts plus the new tokens run past it, as transformers' generate warns.
    private static void WarnBeyondContext(int maxPositions, IReadOnlyList<IReadOnlyList<int>> prompts, int maxNewTokens)
    {
        int limit = maxPositions > 0 ? maxPositions : (int)Math.Min(int.MaxValue, Limits.Get("IRR_MAX_PROMPT_TOKENS", 32_768));
        var tooLong = prompts.Select((p, i) => (Tokens: p.Count, Index: i)).Where(p => p.Tokens > limit).ToList();
        if (tooLong.Count > 0)
        {
            var longest = tooLong.MaxBy(p => p.Tokens);
            throw new IrrException(maxPositions > 0
                ? $"{tooLong.Count} of {prompts.Count} prompts are longer than the model's max_position_embeddings ({maxPositions}); the longest has {longest.Tokens} tokens " +
                  $"(prompt {longest.Index}), as vLLM refuses such prompts (max_model_len): shorten them, or raise max_position_embeddings in config.json if the model was trained on longer ones"
                : $"{tooLong.Count} of {prompts.Count} prompts: the longest has {longest.Tokens} tokens (prompt {longest.Index}) and exceeds the limit of {limit:N0} (raise it with IRR_MAX_PROMPT_TOKENS=…)");
        }
        if (maxPositions <= 0) return;
        var beyond = prompts.Where(p => p.Count + maxNewTokens > maxPositions).ToList();
        if (beyond.Count == 0) return;
        Diagnostics.Warn($"{beyond.Count} of {prompts.Count} prompts run past the model's max_position_embeddings ({maxPositions}) with max-new-tokens {maxNewTokens} " +
                         $"(the longest prompt is {beyond.Max(p => p.Count)} tokens); the answers go beyond the positions the model was trained on, and long prompts are slow");
    }
}

/// <summary>A conversation to answer: its messages (the last is the user turn) and, optionally, the text the answer is made to begin with.</summary>
/// <param name="Messages">The conversation; a system prompt, if any, first.</param>
/// <param name="Prefill">The assistant prefix appended after the generation prompt, or null.</param>
public sealed record ChatRequest(IReadOnlyList<ChatMessage> Messages, string? Prefill = null);

/// <summary>
/// A model directory opened to answer chat messages: the weights (a LoRA adapter merged on the fly), the tokenizer
/// (the adapter folder's when it holds one, else the model's: <see cref="TokenizerSource.Directory"/>) and the ids that end generation. What the generating jobs (<c>irr generate</c>, <c>irr eval</c>) share.
/// </summary>
public sealed class ChatModel : IDisposable
{
    private readonly CheckpointWeights weights;

    private ChatModel(string model, string? adapter, bool rawText, TemplateArgs? args)
    {
        Tokenizer = PretrainedTokenizer.Load(model, adapter).AsRawText(rawText).WithTemplateArgs(args ?? TemplateArgs.None);
        weights = CheckpointWeights.Open(model, adapter);
        try
        {
            Tokenizer.RequireFits(weights.Config.VocabSize, model);
            Transformer = new Transformer(weights);
            EosTokenIds = EosIds(model, weights.Config, Tokenizer);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a model directory, with an optional PEFT LoRA adapter directory; with <paramref name="rawText"/> prompts are text as is
    /// (<see cref="PretrainedTokenizer.RawText"/>), else the chat template renders them with <paramref name="args"/> (<c>--template-arg</c>).
    /// </summary>
    /// <exception cref="IrrException">A file of the model, adapter or tokenizer is missing or malformed.</exception>
    public static ChatModel Open(string model, string? adapter = null, bool rawText = false, TemplateArgs? args = null) => new(model, adapter, rawText, args);

    /// <summary>The tokenizer, with the chat template.</summary>
    public PretrainedTokenizer Tokenizer { get; }

    /// <summary>The model.</summary>
    public Transformer Transformer { get; }

    /// <summary>The ids that end generation (<see cref="EosIds(string, ModelConfig, PretrainedTokenizer)"/>).</summary>
    public IReadOnlyCollection<int> EosTokenIds { get; }

    /// <summary>Greedy decoding, as the paper evaluates, with the model's EOS ids.</summary>
    /// <param name="maxNewTokens">Most tokens generated per prompt.</param>
    /// <param name="batchSize">Prompts decoded together.</param>
    public GenerationOptions Greedy(int maxNewTokens, int batchSize) => new() { MaxNewTokens = maxNewTokens, EosTokenIds = EosTokenIds, BatchSize = batchSize };

    /// <summary>
    /// The ids that end generation: the tokenizer config's eos_token, config.json's eos_token_id and
    /// generation_config.json's eos_token_id (int or list), as transformers' generate uses.
    /// </summary>
    public static HashSet<int> EosIds(string modelDir, ModelConfig config, PretrainedTokenizer tokenizer) => EosIds(modelDir, config.EosTokenIds, tokenizer);

    /// <summary>
    /// <see cref="EosIds(string, ModelConfig, PretrainedTokenizer)"/> of a directory that may hold no weights and whose
    /// config.json is only read for its eos_token_id (a model a serving engine serves; any architecture).
    /// </summary>
    /// <exception cref="IrrException">config.json or generation_config.json is malformed.</exception>
    public static HashSet<int> EosIds(string modelDir, PretrainedTokenizer tokenizer)
    {
        string path = Path.Combine(modelDir, "config.json");
        var configIds = File.Exists(path) ? new JsonConfig(JsonFiles.ParseObject(JsonFiles.ReadText(path), path), path).IntOrIntList("eos_token_id") : [];
        return EosIds(modelDir, configIds, tokenizer);
    }

    private static HashSet<int> EosIds(string modelDir, IReadOnlyList<int> configIds, PretrainedTokenizer tokenizer)
    {
        var ids = new HashSet<int>(configIds);
        ids.UnionWith(GenerationConfig.Load(modelDir).EosTokenIds);
        if (tokenizer.Config.EosToken is not null) ids.Add(tokenizer.EosTokenId);
        return ids;
    }

    /// <inheritdoc/>
    public void Dispose() => weights.Dispose();
}
