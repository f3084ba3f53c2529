using System.Runtime.InteropServices;
using System.Text;

namespace Irr.IO;

/// <summary>
/// Opening a file a model, adapter, data set or recipe brings (issue 24, docs/formats.md "Untrusted input"): only a
/// regular file is opened. A FIFO, a character or block device or a socket where a weight, config, tokenizer, data or
/// recipe file is expected is refused before it is opened (opening a FIFO for reading waits for a writer, forever; a
/// device such as <c>/dev/zero</c> never ends), with one line <c>PATH: not a regular file (a FIFO)</c>.
/// Symbolic links are followed: the Hugging Face cache's snapshot files are links to blobs, and keep working.
/// </summary>
public static class InputFile
{
    /// <summary>
    /// Refuses <paramref name="path"/> when it exists and is not a regular file (after following symbolic links); a
    /// path that does not exist, or cannot be examined, is left to the open that follows to report.
    /// </summary>
    /// <exception cref="IrrException">The path is a FIFO, a device, a socket or a directory.</exception>
    public static void RequireRegular(string path)
    {
        string? kind = Kind(path);
        if (kind is not null) throw new IrrException($"{Escape(path, 4096)}: not a regular file ({kind})");
    }

    /// <summary>Reads a whole text file (UTF-8, a BOM honoured) after <see cref="RequireRegular"/>.</summary>
    /// <exception cref="IrrException">Not a regular file.</exception>
    /// <exception cref="IOException">The file cannot be read (as <see cref="File.ReadAllText(string)"/>).</exception>
    public static string ReadAllText(string path)
    {
        RequireRegular(path);
        return File.ReadAllText(path);
    }

    /// <summary>Reads a whole file after <see cref="RequireRegular"/>.</summary>
    /// <exception cref="IrrException">Not a regular file.</exception>
    /// <exception cref="IOException">The file cannot be read (as <see cref="File.ReadAllBytes(string)"/>).</exception>
    public static byte[] ReadAllBytes(string path)
    {
        RequireRegular(path);
        return File.ReadAllBytes(path);
    }

    /// <summary>Reads a whole text file's lines after <see cref="RequireRegular"/>.</summary>
    /// <exception cref="IrrException">Not a regular file.</exception>
    public static string[] ReadAllLines(string path)
    {
        RequireRegular(path);
        return File.ReadAllLines(path);
    }

    /// <summary>Opens a file for reading after <see cref="RequireRegular"/>.</summary>
    /// <exception cref="IrrException">Not a regular file.</exception>
    public static FileStream OpenRead(string path)
    {
        RequireRegular(path);
        return File.OpenRead(path);
    }

    /// <summary>
    /// <paramref name="text"/> escaped as <see cref="Diagnostics.Escape"/> escapes it (control characters, lone surrogates,
    /// line separators and bidirectional controls as <c>\n</c>, <c>\x1b</c>, <c>\ud800</c> …), so that text from a file cannot break a one-line
    /// message or drive the terminal; at most <paramref name="max"/> characters of it, then "…".
    /// </summary>
    public static string Escape(string text, int max = 200)
    {
        string escaped = Diagnostics.Escape(text);
        if (escaped.Length <= max) return escaped;
        int cut = char.IsHighSurrogate(escaped[max - 1]) ? max - 1 : max; // never half a pair
        return escaped[..cut] + "…";
    }

    /// <summary>Whether <paramref name="text"/> holds no lone surrogate (is a string of Unicode scalar values, as UTF-8 can hold).</summary>
    public static bool IsValidUnicode(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(c)) return false;
        }
        return true;
    }

    /// <summary>Whether <paramref name="text"/> holds no control character and no lone surrogate (what a tensor name or a key may hold).</summary>
    public static bool IsPrintable(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsControl(c)) return false;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(c)) return false;
        }
        return true;
    }

    // ---- the file type, through the runtime's own stat (System.Native's SystemNative_Stat, which follows links) ----

    // PAL_S_IF* of System.Native's FileStatus.Mode (dotnet/runtime src/native/libs/System.Native/pal_io.h).
    private const int TypeMask = 0xF000, Fifo = 0x1000, CharDevice = 0x2000, Directory = 0x4000, BlockDevice = 0x6000, Regular = 0x8000, Socket = 0xC000;

    private static bool statMissing;

    // The kind of a non-regular file ("a FIFO", …); null for a regular file, or when the path cannot be examined.
    /// <summary>What the path leads to when it is not a regular file ("a FIFO", "a character device" …), or null (a regular file, nothing, or unknown).</summary>
    internal static string? KindOf(string path) => Kind(path);

    private static string? Kind(string path)
    {
        if (OperatingSystem.IsWindows() || statMissing) return null;
        int mode;
        try
        {
            mode = StatMode(path);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            statMissing = true; // a runtime without System.Native's stat: files are opened as before
            return null;
        }
        if (mode < 0) return null;
        return (mode & TypeMask) switch
        {
            Regular => null,
            Fifo => "a FIFO",
            CharDevice => "a character device",
            BlockDevice => "a block device",
            Socket => "a socket",
            Directory => "a directory",
            _ => "not a file",
        };
    }

    // The mode of the file the path leads to (links followed); -1 when it cannot be examined (missing, no permission).
    private static unsafe int StatMode(string path)
    {
        // FileStatus is { int32 Flags; int32 Mode; … } of about 120 bytes; the buffer leaves room for later fields.
        byte* status = stackalloc byte[512];
        return SystemNativeStat(path, status) == 0 ? *(int*)(status + 4) : -1;
    }

    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat", SetLastError = true)]
    private static extern unsafe int SystemNativeStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* output);

    /// <summary>
    /// Why a file could not be opened, in irr's words rather than the runtime's ("Could not find file '…'"): "no such
    /// file or directory", "permission denied", or the runtime's message, escaped, for anything else.
    /// </summary>
    public static string Reason(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file or directory",
        UnauthorizedAccessException => "permission denied",
        _ => Diagnostics.Escape(e.Message),
    };

    /// <summary>
    /// An I/O error as one line naming the path: "<c>PATH: no such file or directory</c>" when the runtime says which path
    /// (<see cref="FileNotFoundException.FileName"/>), else the runtime's message, escaped.
    /// </summary>
    public static string Describe(Exception e) => e switch
    {
        FileNotFoundException { FileName: { } file } => $"{Diagnostics.Escape(file)}: {Reason(e)}",
        _ => Diagnostics.Escape(e.Message),
    };
}
