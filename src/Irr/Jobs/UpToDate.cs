using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.Jobs;

/// <summary>
/// The one rule by which irr decides that earlier work is done and may be reused instead of redone, shared by
/// <c>irr run</c> (a recipe step, <see cref="RunLedger"/>), the sweep (a point or reference, its point.json) and evaluation
/// (a prompt set's responses, <c>SafetyEvaluation.Reusable</c>): the work recorded a <b>fingerprint</b> (what it was
/// asked to compute: the options that can change its result, from <see cref="JobSchema.Fingerprint"/>, and the content
/// stamps of its inputs) and the fingerprint of the work asked for now is the same JSON, value for value. Anything
/// unreadable is not done: it is redone, never trusted.
/// </summary>
public static class UpToDate
{
    /// <summary>The key under which a result file records its fingerprint.</summary>
    public const string Key = "options";

    /// <summary>Whether a recorded fingerprint is the one asked for now (JSON equality; a missing record never is).</summary>
    public static bool Same(JsonNode? recorded, JsonNode? wanted) => recorded is not null && JsonNode.DeepEquals(recorded, wanted);

    /// <summary>
    /// The result file at <paramref name="path"/> when it exists, reads as a JSON object and records <paramref name="wanted"/>
    /// under <see cref="Key"/>; else null (a missing, unreadable or different result is redone).
    /// </summary>
    public static JsonObject? Load(string path, JsonNode wanted)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var json = JsonFiles.ParseObject(BoundedText.Read(path), path);
            return Same(json[Key], wanted) ? json : null;
        }
        catch (Exception e) when (e is IrrException or JsonException or IOException) { return null; }
    }
}
