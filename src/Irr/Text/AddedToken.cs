namespace Irr.Text;

/// <summary>
/// A token of <c>tokenizer.json</c>'s <c>added_tokens</c>: matched in the text before the model runs
/// and mapped straight to its id. Named and flagged as in Hugging Face <c>tokenizers</c>.
/// </summary>
/// <param name="Content">The text of the token, e.g. <c>&lt;s&gt;</c> or <c>&lt;|im_start|&gt;</c>.</param>
/// <param name="Id">Its id.</param>
/// <param name="Special">A special token: dropped by decoding when special tokens are skipped.</param>
/// <param name="SingleWord">Matched only when not inside a word.</param>
/// <param name="LStrip">A match also takes the whitespace on its left.</param>
/// <param name="RStrip">A match also takes the whitespace on its right.</param>
/// <param name="Normalized">Matched in the normalized text (against its own normalized content) rather than the raw text.</param>
public sealed record AddedToken(string Content, int Id, bool Special, bool SingleWord = false, bool LStrip = false, bool RStrip = false, bool Normalized = false);
