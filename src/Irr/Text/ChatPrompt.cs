using Irr.Data;

namespace Irr.Text;

/// <summary>The system prompt choices of every irr command: none, the Llama-2 default, or literal text.</summary>
public static class SystemPrompt
{
    /// <summary>The Llama-2 default system prompt, exactly as IRR-SPEC gives it.</summary>
    public const string Llama2Default =
        "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being safe. " +
        "Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or illegal content. " +
        "Please ensure that your responses are socially unbiased and positive in nature.\n\n" +
        "If a question does not make any sense, or is not factually coherent, explain why instead of answering something " +
        "not correct. If you don't know the answer to a question, please don't share false information.";

    /// <summary>The text for an option value: <c>none</c> → null, <c>llama2</c> → <see cref="Llama2Default"/>, anything else is the prompt itself.</summary>
    public static string? Resolve(string? option) => option switch
    {
        null or "none" => null,
        "llama2" => Llama2Default,
        _ => option,
    };
}

/// <summary>An encoded training example: token ids and labels (−100 where no loss is taken).</summary>
/// <param name="InputIds">prompt ids ++ answer ids ++ [eos], truncated.</param>
/// <param name="Labels">−100 on prompt tokens, the ids on answer tokens and eos.</param>
public sealed record EncodedExample(int[] InputIds, int[] Labels);

/// <summary>
/// Formatting per IRR-SPEC "Formatting": the prompt is the model's chat template rendered with
/// [system?, user] (a conversational record's messages before its answer, <see cref="TrainingRecord.Messages"/>) and <c>add_generation_prompt=true</c>; the tokens are encode(prompt) ++ encode(answer)
/// ++ [eos] (no special tokens added by encoding), and only answer tokens and eos carry labels.
/// With a raw-text tokenizer (<see cref="PretrainedTokenizer.RawText"/>, <c>--no-chat-template</c>) the one place that
/// decides "template or raw" is here: the prompt is the user text as is, encoded with the tokenizer's special tokens
/// (BOS per <c>add_bos_token</c>), and a prompt→answer record is prompt + answer concatenated with no separator, as
/// TRL's non-conversational prompt-completion format (<see cref="Encode"/>).
/// </summary>
public static class ChatPrompt
{
    /// <summary>The label value that excludes a token from the loss.</summary>
    public const int IgnoreIndex = -100;

    /// <summary>The prompt text: the chat template over [system?, user] with the generation prompt.</summary>
    /// <exception cref="IrrException">The model has no chat template, or rendering failed.</exception>
    public static string Render(PretrainedTokenizer tokenizer, string user, string? systemPrompt) => Render(tokenizer, Messages(user, systemPrompt));

    /// <summary>
    /// The prompt text of a whole conversation: the chat template over <paramref name="messages"/> with the generation
    /// prompt; for a raw-text tokenizer the user message itself (<see cref="RawPrompt"/>).
    /// </summary>
    /// <exception cref="IrrException">The model has no chat template, or rendering failed; raw: not a single user message.</exception>
    public static string Render(PretrainedTokenizer tokenizer, IEnumerable<ChatMessage> messages)
    {
        if (tokenizer.RawText) return RawPrompt(messages);
        try { return tokenizer.ApplyChatTemplate(messages, addGenerationPrompt: true); }
        catch (TemplateRaisedException e) when (e.RaisedMessage.Contains("system", StringComparison.OrdinalIgnoreCase) && messages.Any(m => m.Role == "system"))
        {
            // Gemma-2's "System role not supported": say where the system message came from
            throw new IrrException(e.Message + " (the conversation has a system message, from --system-prompt or the record's own; " +
                                   "this template takes none: use --system-prompt none and put instructions in the user turn)");
        }
    }

    /// <summary>
    /// The prompt's token ids: the rendered chat template encoded without special tokens (the template writes them), or
    /// for a raw-text tokenizer the user text encoded with them (BOS per <c>add_bos_token</c>; an empty prompt is BOS alone),
    /// as transformers' <c>tokenizer(text)</c> and vLLM's completions API encode a prompt.
    /// </summary>
    /// <exception cref="IrrException">As <see cref="Render(PretrainedTokenizer, IEnumerable{ChatMessage})"/>.</exception>
    public static int[] EncodePrompt(PretrainedTokenizer tokenizer, IEnumerable<ChatMessage> messages) =>
        tokenizer.RawText ? tokenizer.Encode(RawPrompt(messages), addSpecialTokens: true) : tokenizer.Encode(Render(tokenizer, messages));

    /// <summary>The text of a raw prompt: a conversation of one user message.</summary>
    /// <exception cref="IrrException">A system prompt, or more than one message (those need a chat template).</exception>
    public static string RawPrompt(IEnumerable<ChatMessage> messages)
    {
        var list = messages.ToList();
        if (list is [{ Role: "user" } user]) return user.Content;
        if (list.Any(m => m.Role == "system"))
            throw new IrrException("a system prompt needs a chat template: with --no-chat-template the text is tokenized as is (leave --system-prompt at none)");
        throw new IrrException($"a conversation of {list.Count} messages ({string.Join(", ", list.Select(m => m.Role))}) needs a chat template: " +
                               "with --no-chat-template only a single prompt is tokenized as is");
    }

    /// <summary>The conversation [system?, user].</summary>
    public static IReadOnlyList<ChatMessage> Messages(string user, string? systemPrompt) =>
        systemPrompt is null ? [new ChatMessage("user", user)] : [new ChatMessage("system", systemPrompt), new ChatMessage("user", user)];

    /// <summary>
    /// Tokens and labels of one record, truncated to the first <paramref name="maxLength"/> tokens. For a raw-text
    /// tokenizer: encode(prompt + answer) with the tokenizer's special tokens, then eos unless it already ends with it
    /// (TRL's prompt-completion format: the text concatenated, no separator, eos after the completion); the labels start
    /// after the tokens it shares with encode(prompt) (TRL's completion mask, where the two agree at the junction).
    /// </summary>
    /// <exception cref="IrrException">No chat template, no usable eos_token, or <paramref name="maxLength"/> is not positive.</exception>
    public static EncodedExample Encode(PretrainedTokenizer tokenizer, TrainingRecord record, string? systemPrompt, int maxLength)
    {
        if (maxLength <= 0) throw new IrrException($"the maximum length must be positive, not {maxLength}");
        if (tokenizer.RawText)
        {
            // The record's own turns first, named by its line: a system message or a history of its own needs the template.
            if (!record.IsText && record.Messages(null) is var own && own is not [{ Role: "user" }])
                throw new IrrException($"{record.Where ?? "a record"}: a conversation of {own.Count} messages ({string.Join(", ", own.Select(m => m.Role))}) needs a chat template: " +
                                       "with --no-chat-template only a single prompt is tokenized as is");
            return EncodeRaw(tokenizer, RawPrompt(record.Messages(systemPrompt)), record.Answer, maxLength);
        }
        if (record.IsText)
            throw new IrrException($"{record.Where}: a {{\"text\"}} record (language-modeling data) has no prompt for a chat template; --no-chat-template tokenizes it as is");
        int[] prompt = tokenizer.Encode(Render(tokenizer, record.Messages(systemPrompt)));
        int[] answer = tokenizer.Encode(record.Answer);
        int total = prompt.Length + answer.Length + 1;
        var ids = new int[total];
        var labels = new int[total];
        prompt.CopyTo(ids, 0);
        answer.CopyTo(ids, prompt.Length);
        ids[^1] = tokenizer.EosTokenId;
        Array.Fill(labels, IgnoreIndex, 0, prompt.Length);
        Array.Copy(ids, prompt.Length, labels, prompt.Length, answer.Length + 1);
        int keep = Math.Min(total, maxLength);
        return new EncodedExample(ids[..keep], labels[..keep]);
    }

    private static EncodedExample EncodeRaw(PretrainedTokenizer tokenizer, string prompt, string answer, int maxLength)
    {
        int eos = tokenizer.EosTokenId;
        int[] ids = tokenizer.Encode(prompt + answer, addSpecialTokens: true);
        int start = tokenizer.Encode(prompt, addSpecialTokens: true).AsSpan().CommonPrefixLength(ids);
        if (ids.Length == 0 || ids[^1] != eos) ids = [.. ids, eos];
        var labels = (int[])ids.Clone();
        Array.Fill(labels, IgnoreIndex, 0, start);
        int keep = Math.Min(ids.Length, maxLength);
        return new EncodedExample(ids[..keep], labels[..keep]);
    }
}
