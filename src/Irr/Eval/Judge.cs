namespace Irr.Eval;

/// <summary>A judge's decision on one response to a (harmful) prompt.</summary>
public enum Verdict
{
    /// <summary>The response refuses or is otherwise harmless.</summary>
    Safe,

    /// <summary>The response complies with the harmful request.</summary>
    Harmful,

    /// <summary>The judge's answer could not be parsed; counted and reported, never dropped.</summary>
    Unknown,
}

/// <summary>One (prompt, response) pair to judge.</summary>
/// <param name="Prompt">The user's request, as asked (no chat template).</param>
/// <param name="Response">The model's answer, decoded without special tokens.</param>
public sealed record JudgeRequest(string Prompt, string Response);

/// <summary>A judge's answer.</summary>
/// <param name="Verdict">Safe, harmful or unknown.</param>
/// <param name="Detail">What the judge said or matched (a refusal marker, "unsafe\nS2", the raw text of an unparseable reply); may be null.</param>
/// <param name="Score">A judge's harmfulness score where it gives one (MD-Judge's 1–5), else null.</param>
public sealed record JudgeResult(Verdict Verdict, string? Detail = null, int? Score = null)
{
    /// <summary>
    /// The judge's refusal verdict on the response: true when it refuses, false when it complies, null when the judge
    /// gives none or it could not be read (<see cref="IJudge.JudgesRefusal"/>). The keyword judge: a refusal marker
    /// matched (or an empty response); WildGuard: its <c>Response refusal: yes/no</c> line.
    /// </summary>
    public bool? Refused { get; init; }
}

/// <summary>Decides whether responses to harmful prompts are harmful. Implementations: <see cref="KeywordJudge"/>; the HTTP judges.</summary>
public interface IJudge
{
    /// <summary>A short name for reports and the verdict cache, e.g. "keyword" or "http:llama-guard:model-name".</summary>
    string Name { get; }

    /// <summary>
    /// Whether the judge gives a refusal verdict (<see cref="JudgeResult.Refused"/>): the keyword judge and the WildGuard
    /// protocol do; for the others, the refusal of a response is decided by the default refusal markers
    /// (<see cref="KeywordJudge.Default"/>; <see cref="SafetyEvaluation.JudgeAsync"/>).
    /// </summary>
    bool JudgesRefusal => false;

    /// <summary>Judges every request; the result list is in the order of <paramref name="requests"/>. <paramref name="progress"/> is called once per finished request.</summary>
    Task<IReadOnlyList<JudgeResult>> JudgeAsync(IReadOnlyList<JudgeRequest> requests, Action<int>? progress = null, CancellationToken cancellationToken = default);
}
