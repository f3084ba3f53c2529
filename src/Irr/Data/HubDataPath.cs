using System.Text;
using System.Text.RegularExpressions;
using Irr.IO;

namespace Irr.Data;

/// <summary>
/// A file in a Hugging Face Hub repo named the way the <c>datasets</c> library, pandas and polars name it:
/// <c>hf://datasets/org/name[@revision]/path/in/repo</c>, or <c>hf://org/name[@revision]/path</c> (and
/// <c>hf://models/org/name…</c>) for a model repo. Parsed exactly as huggingface_hub parses it
/// (<c>utils/_hf_uris.py</c>, <c>parse_hf_uri</c>, which <c>HfFileSystem.resolve_path</c> calls): the revision follows the
/// first <c>@</c> that comes right after <c>namespace/name</c> (an <c>@</c> further on is part of the path); the special
/// refs <c>refs/convert/&lt;name&gt;</c> and <c>refs/pr/&lt;N&gt;</c> are taken whole although they hold a <c>/</c>; any other
/// revision ends at the next <c>/</c> and is URL-decoded, so <c>@refs%2Fconvert%2Fparquet</c> and <c>@feature%2Ffoo</c> name
/// <c>refs/convert/parquet</c> and <c>feature/foo</c>. Not read here: Spaces, kernels and buckets (refused), and the Hub's
/// web URLs (<c>https://huggingface.co/…/blob/…</c>), which huggingface_hub also accepts.
/// </summary>
/// <param name="RepoType">"dataset" or "model".</param>
/// <param name="RepoId">"namespace/name".</param>
/// <param name="Revision">The branch, tag, commit or ref; "main" when none is given.</param>
/// <param name="PathInRepo">The path inside the repo, "" for the repo's root.</param>
public sealed partial record HubDataPath(string RepoType, string RepoId, string Revision, string PathInRepo)
{
    // constants.HF_PROTOCOL.
    private const string Scheme = ModelReference.HfScheme;

    // constants.HF_URI_TYPE_PREFIXES: the plural prefix of each repo type.
    private static readonly Dictionary<string, string> Types = new(StringComparer.Ordinal)
    {
        ["models"] = "model", ["datasets"] = "dataset", ["spaces"] = "space", ["kernels"] = "kernel", ["buckets"] = "bucket",
    };

    /// <summary>Whether <paramref name="text"/> is meant as a Hub path (it starts with <c>hf://</c>) rather than a local one.</summary>
    public static bool IsHubPath(string text) => text.StartsWith(Scheme, StringComparison.Ordinal);

    /// <summary>Parses <c>hf://[datasets/|models/]namespace/name[@revision][/path/in/repo]</c>.</summary>
    /// <exception cref="IrrException">
    /// The text is not such a path: no <c>hf://</c>, no <c>namespace/name</c> (<see cref="HubCache.RepoIdProblem"/>), a singular
    /// type (<c>hf://dataset/…</c>), a Space, kernel or bucket, an empty revision, an empty path segment (<c>a//b</c>), or a
    /// <c>.</c> or <c>..</c> segment; one line naming the text.
    /// </exception>
    public static HubDataPath Parse(string text)
    {
        IrrException Bad(string problem) => new(Diagnostics.Escape($"{text}: {problem}"));
        if (!IsHubPath(text)) throw Bad($"not a Hub path (expected {Scheme}datasets/namespace/name[@revision]/path/in/repo)");
        string body = text[Scheme.Length..];
        if (body.Length == 0) throw Bad($"nothing after '{Scheme}'");
        var (type, location) = SplitType(body, Bad);
        if (type is not ("dataset" or "model"))
            throw Bad($"{type} repos are not read (a data set is hf://datasets/namespace/name/…, a model hf://namespace/name/…)");
        return ParseRepo(type, location.Trim('/'), Bad);
    }

    /// <summary>The canonical form, as <c>HfUri.to_uri</c> writes it: <c>hf://datasets/org/name@rev/path</c> (the revision only when not "main"; a '/' in it as %2F unless it is a special ref).</summary>
    public override string ToString()
    {
        bool special = SpecialRef().Match(Revision) is { Success: true } m && m.Length == Revision.Length;
        string revision = Revision == HubCache.DefaultRevision ? "" : "@" + (special ? Revision : Revision.Replace("/", "%2F"));
        string path = PathInRepo.Length == 0 ? "" : "/" + PathInRepo;
        return $"{Scheme}{RepoType}s/{RepoId}{revision}{path}";
    }

    // _split_type: an optional plural type prefix; none means a model repo.
    private static (string Type, string Location) SplitType(string body, Func<string, IrrException> bad)
    {
        int slash = body.IndexOf('/');
        string first = slash < 0 ? body : body[..slash];
        if (slash < 0 && Types.ContainsKey(first)) throw bad($"nothing after '{first}' (expected {Scheme}{first}/namespace/name)");
        if (Types.Values.Contains(first)) throw bad($"the type prefix is plural: '{first}s/', not '{first}/'");
        return slash >= 0 && Types.TryGetValue(first, out string? type) ? (type, body[(slash + 1)..]) : ("model", body);
    }

    // _parse_repo_body and HfUri's checks.
    private static HubDataPath ParseRepo(string type, string location, Func<string, IrrException> bad)
    {
        if (location.Length == 0) throw bad("no repo ID");
        int at = location.IndexOf('@');
        string repoId, path;
        string? revision = null;
        if (at < 0 || location[..at].Count(c => c == '/') > 1)
        {
            var parts = location.Split('/', 3);
            if (parts.Length < 2) throw bad($"the repo ID must be 'namespace/name', not '{location}'");
            (repoId, path) = ($"{parts[0]}/{parts[1]}", parts.Length > 2 ? parts[2] : "");
        }
        else
        {
            repoId = location[..at];
            if (repoId.Length == 0) throw bad("no repo ID before '@'");
            if (repoId.Count(c => c == '/') != 1) throw bad($"the repo ID must be 'namespace/name', not '{repoId}'");
            string rest = location[(at + 1)..];
            var special = SpecialRef().Match(rest);
            int slash = rest.IndexOf('/');
            (revision, path) = special.Success ? (special.Value, rest[special.Length..] is var tail && tail.StartsWith('/') ? tail[1..] : tail)
                : slash < 0 ? (rest, "") : (rest[..slash], rest[(slash + 1)..]);
            revision = Unquote(revision);
            if (revision.Length == 0) throw bad("empty revision after '@'");
        }
        if (repoId.Count(c => c == '/') != 1) throw bad($"the repo ID must be 'namespace/name', not '{repoId}'");
        if (HubCache.RepoIdProblem(repoId) is { } problem) throw bad($"'{repoId}': {problem}");
        if (path.StartsWith('/') || path.Contains("//", StringComparison.Ordinal)) throw bad($"the path has an empty segment ('{path}')");
        if (path.Split('/').Any(s => s is "." or "..")) throw bad($"the path has a '.' or '..' segment ('{path}')");
        return new HubDataPath(type, repoId, revision ?? HubCache.DefaultRevision, path);
    }

    // urllib.parse.unquote: runs of %XX are bytes decoded as UTF-8 (an invalid sequence becomes U+FFFD); the rest is kept.
    private static string Unquote(string text)
    {
        if (!text.Contains('%')) return text;
        var result = new StringBuilder();
        var bytes = new List<byte>();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '%' && i + 2 < text.Length && Uri.IsHexDigit(text[i + 1]) && Uri.IsHexDigit(text[i + 2]))
            {
                bytes.Add(Convert.ToByte(text.Substring(i + 1, 2), 16));
                i += 2;
                continue;
            }
            Flush(result, bytes);
            result.Append(text[i]);
        }
        Flush(result, bytes);
        return result.ToString();
    }

    private static void Flush(StringBuilder result, List<byte> bytes)
    {
        if (bytes.Count == 0) return;
        result.Append(Encoding.UTF8.GetString(bytes.ToArray()));
        bytes.Clear();
    }

    // _SPECIAL_REFS_REVISION_REGEX: refs/convert/<name> (letters, digits, '_', '.', '-') and refs/pr/<N>, taken whole.
    [GeneratedRegex(@"^refs/(?:convert/[\w.-]+|pr/\d+)")]
    private static partial Regex SpecialRef();
}
