using Irr.Jobs;

namespace Irr.Eval;

/// <summary>The <c>limit</c> option the evaluation and generation jobs share.</summary>
internal static class JobOptions
{
    /// <summary>Requires an absent limit or one of at least 1.</summary>
    public static void RequireLimit(string command, int? limit) =>
        Validation.Require(limit is null or >= 1, command, $"limit must be at least 1, not {limit}");

    /// <summary>The first <paramref name="limit"/> items, or all of them when it is null.</summary>
    public static IReadOnlyList<T> Limit<T>(IReadOnlyList<T> items, int? limit) => limit is { } n ? items.Take(n).ToList() : items;
}
