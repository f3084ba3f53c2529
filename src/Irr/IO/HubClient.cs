namespace Irr.IO;

// API skeleton for issue 27's downloader: the body is being written in worktree hub27 and replaces this file.

/// <summary>Where and how irr talks to the Hugging Face Hub (<c>huggingface_hub.constants</c>).</summary>
/// <param name="Endpoint">The Hub's base URL, no trailing '/': <c>HF_ENDPOINT</c>, default <c>https://huggingface.co</c>.</param>
/// <param name="Token">The access token: <c>HF_TOKEN</c>, else the file <c>HF_HOME/token</c> (or <c>HF_TOKEN_PATH</c>), else null.</param>
/// <param name="Cache">The cache directory (<see cref="HubCache.Directory"/>).</param>
/// <param name="Offline">Whether <c>HF_HUB_OFFLINE</c> is set: nothing is requested, only the cache is read.</param>
public sealed record HubSettings(string Endpoint, string? Token, string Cache, bool Offline)
{
    /// <summary>The settings the environment gives.</summary>
    public static HubSettings FromEnvironment() => throw new NotSupportedException("Hub downloads are not built yet");
}

/// <summary>One file's download progress, for a progress bar per file.</summary>
/// <param name="File">The file's path in the repo.</param>
/// <param name="Done">Bytes on disk so far (a resumed download starts at its .incomplete's size).</param>
/// <param name="Total">The file's size in bytes (<c>X-Linked-Size</c> or <c>Content-Length</c>), 0 when unknown.</param>
public readonly record struct HubDownloadProgress(string File, long Done, long Total);

/// <summary>Downloads repo files into the Hub cache as <c>huggingface_hub</c> does, so Python tools share it.</summary>
public sealed class HubClient(HubSettings settings, HttpMessageHandler? handler = null)
{
    /// <summary>The settings.</summary>
    public HubSettings Settings { get; } = settings;

    private readonly HttpMessageHandler? _handler = handler;

    /// <summary>The client of this async flow: <see cref="Override"/>'s, else one from the environment.</summary>
    public static HubClient Current => throw new NotSupportedException("Hub downloads are not built yet");

    /// <summary>Uses <paramref name="client"/> as <see cref="Current"/> in this async flow (tests); dispose to restore.</summary>
    public static IDisposable Override(HubClient client) => throw new NotSupportedException("Hub downloads are not built yet");

    /// <summary>Where this async flow's downloads report progress (the command line draws a bar per file); dispose to restore.</summary>
    public static IDisposable Observe(Action<HubDownloadProgress> observer)
    {
        var previous = Observer.Value;
        Observer.Value = observer;
        return new Restore(() => Observer.Value = previous);
    }

    private static readonly AsyncLocal<Action<HubDownloadProgress>?> Observer = new();

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    /// <summary>
    /// The snapshot directory of <paramref name="repoId"/> at <paramref name="revision"/> with the files
    /// <paramref name="select"/> picks from the repo's file list, downloading those not yet in the cache for that commit.
    /// Offline, or for a commit whose picked files are all cached, nothing is requested.
    /// </summary>
    public (string Snapshot, string Commit) Snapshot(string repoId, string revision, string repoType,
        Func<IReadOnlyList<string>, IReadOnlyList<string>> select) => throw new NotSupportedException("Hub downloads are not built yet");

    /// <summary>One file of a repo (a data set's parquet, say): its path in the snapshot, downloaded when missing.</summary>
    public (string Path, string Commit) File(string repoId, string revision, string repoType, string path) =>
        throw new NotSupportedException("Hub downloads are not built yet");
}
