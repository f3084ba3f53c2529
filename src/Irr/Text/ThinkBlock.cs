namespace Irr.Text;

/// <summary>
/// The reasoning of a thinking model's answer apart from the answer itself: Qwen3 in thinking mode answers
/// <c>&lt;think&gt;…&lt;/think&gt;answer</c>. Split as vLLM's <c>--reasoning-parser qwen3</c> separates
/// <c>reasoning_content</c> from <c>content</c> (vllm/reasoning/qwen3_reasoning_parser.py): without <c>&lt;/think&gt;</c> the
/// whole text is the answer (no reasoning; also an answer cut off inside its reasoning); else the reasoning is the text
/// before the first <c>&lt;/think&gt;</c>, after a <c>&lt;think&gt;</c> there when there is one (a template may put
/// <c>&lt;think&gt;</c> in the prompt), and the answer is everything after that <c>&lt;/think&gt;</c>, as it is.
/// The evaluations judge and score the answer and keep the reasoning beside it (docs/EVAL.md, "Thinking models").
/// </summary>
public static class ThinkBlock
{
    /// <summary>The tag that opens the reasoning.</summary>
    public const string Start = "<think>";

    /// <summary>The tag that closes the reasoning.</summary>
    public const string End = "</think>";

    /// <summary>The reasoning (null when there is no <c>&lt;/think&gt;</c>) and the answer of a generated text.</summary>
    public static (string? Reasoning, string Answer) Split(string text)
    {
        int end = text.IndexOf(End, StringComparison.Ordinal);
        if (end < 0) return (null, text);
        string before = text[..end];
        int start = before.IndexOf(Start, StringComparison.Ordinal);
        return (start < 0 ? before : before[(start + Start.Length)..], text[(end + End.Length)..]);
    }
}
