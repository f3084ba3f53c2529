using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using Irr.IO;
using Parquet;
using Parquet.Schema;

namespace Irr.Data;

/// <summary>
/// The records of a parquet file (the Hub's data sets, and their <c>refs/convert/parquet</c> copies), read with Parquet.Net:
/// each row is the JSON object of its columns, in schema order, read exactly as a JSONL line would be
/// (<see cref="DataRecord.FromJson"/>); it is named <c>data.parquet row 7</c> (1-based) in errors. Columns of strings,
/// booleans, integers and floating-point numbers are read (a null is JSON null, a NaN or infinity null too), and structs
/// and lists of them as JSON objects and arrays (<see cref="ParquetColumn"/>); other columns (maps, lists of structs,
/// bytes, dates …) are left out with one warning. The file is untrusted: its footer, its row groups' row counts, their
/// leaf columns' uncompressed sizes and value counts are checked against <see cref="DataLimits"/> before anything is
/// allocated for them, and every row, nested values included, is counted against the file's budget as it is made.
/// </summary>
internal static class ParquetData
{
    /// <summary>Reads the records of a seekable parquet stream; <paramref name="fileName"/> names the file in errors.</summary>
    /// <exception cref="IrrException">The file is no parquet file, is corrupt, or is beyond a limit of <see cref="DataLimits"/>.</exception>
    public static List<DataRecord> Read(Stream stream, string fileName, DataBudget budget)
    {
        CheckFooter(stream, fileName);
        stream.Position = 0;
        try
        {
            var reader = ParquetReader.CreateAsync(stream, leaveStreamOpen: true).GetAwaiter().GetResult();
            try { return Rows(reader, fileName, budget); }
            finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        }
        catch (Exception e) when (e is not IrrException and not OutOfMemoryException)
        {
            throw new IrrException(Diagnostics.Escape($"{fileName}: not a readable parquet file ({e.GetType().Name}: {e.Message})"));
        }
    }

    // The rows of every row group, in order.
    private static List<DataRecord> Rows(ParquetReader reader, string fileName, DataBudget budget)
    {
        var columns = Columns(reader.Schema, fileName);
        var leaves = columns.SelectMany(c => c.Leaves).ToList();
        var records = new List<DataRecord>();
        long uncompressed = 0, entries = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            long rows = group.RowCount;
            foreach (var leaf in leaves)
            {
                var meta = group.GetMetadata(leaf)?.MetaData;
                uncompressed = checked(uncompressed + (meta?.TotalUncompressedSize ?? 0)); // hostile sizes overflow: refused
                entries = checked(entries + Math.Max(meta?.NumValues ?? rows, rows));
            }
            if (rows < 0 || records.Count + rows > DataLimits.Records)
                throw Limits.Exceeded(fileName, "the number of records", DataLimits.RecordsVariable, DataLimits.Records);
            if (uncompressed < 0 || entries < 0 || checked(uncompressed + entries * DataLimits.BytesPerValue) > DataLimits.DataBytes)
                throw Limits.Exceeded(fileName, "the records' size in memory (bytes, and 16 a value or field)", DataLimits.DataBytesVariable, DataLimits.DataBytes);
            var cells = columns.Select(c => c.Read(group, (int)rows, fileName)).ToList(); // [column][row]
            for (int r = 0; r < rows; r++)
                records.Add(Row(columns, cells, r, $"{fileName} row {records.Count + 1}", budget));
        }
        return records;
    }

    // A parquet file starts and ends with "PAR1"; before the last one is the footer's length (4 bytes, little-endian),
    // which must fit in the file and within the data limit before the footer is read.
    private static void CheckFooter(Stream stream, string fileName)
    {
        long length = stream.Length;
        Span<byte> head = stackalloc byte[4], tail = stackalloc byte[8];
        if (length < 12) throw new IrrException($"{fileName}: not a parquet file ({length} bytes; a parquet file has at least 12)");
        stream.Position = 0;
        stream.ReadExactly(head);
        stream.Position = length - 8;
        stream.ReadExactly(tail);
        if (!head.SequenceEqual("PAR1"u8) || !tail[4..].SequenceEqual("PAR1"u8))
            throw new IrrException($"{fileName}: not a parquet file (it does not start and end with PAR1)");
        long footer = BinaryPrimitives.ReadUInt32LittleEndian(tail);
        if (footer > length - 12)
            throw new IrrException($"{fileName}: corrupt parquet file (its footer says {footer} bytes, the file has {length})");
        if (footer > DataLimits.DataBytes)
            throw Limits.Exceeded(fileName, "the parquet footer's size", DataLimits.DataBytesVariable, DataLimits.DataBytes);
    }

    // The top-level columns read (scalars, structs of scalars, lists of scalars); the others are named in one warning.
    private static List<ParquetColumn> Columns(ParquetSchema schema, string fileName)
    {
        var read = schema.Fields.Select(ParquetColumn.Of).OfType<ParquetColumn>().ToList();
        var skipped = schema.Fields.Where(f => read.All(c => c.Field != f)).Select(f => f.Name).ToList();
        if (skipped.Count > 0)
            Diagnostics.Warn(Diagnostics.Escape($"{fileName}: columns left out (not strings, booleans or numbers, nor structs or lists of them): {string.Join(", ", skipped)}"));
        return read;
    }

    // Row r as a JSON object {column: value}, counted against the record and file limits (a list's items and a struct's
    // fields are values too).
    private static DataRecord Row(List<ParquetColumn> columns, List<object?[]> cells, int r, string where, DataBudget budget)
    {
        var buffer = new ArrayBufferWriter<byte>();
        long values = 0;
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            json.WriteStartObject();
            for (int c = 0; c < columns.Count; c++)
            {
                json.WritePropertyName(columns[c].Field.Name);
                values += Write(json, cells[c][r]);
                if (json.BytesPending + json.BytesCommitted > DataLimits.RecordBytes)
                    throw Limits.Exceeded(where, "the record's size in bytes", DataLimits.RecordBytesVariable, DataLimits.RecordBytes);
            }
            json.WriteEndObject();
        }
        budget.Add(buffer.WrittenCount, values);
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return DataRecord.FromJson(JsonCursor.Root(doc, where).Detached());
    }

    // Writes a cell (a scalar, a list object?[], a struct of (name, value) pairs); returns the JSON values written.
    private static long Write(Utf8JsonWriter json, object? value)
    {
        switch (value)
        {
            case object?[] items:
                json.WriteStartArray();
                long inList = 1;
                foreach (var item in items) inList += Write(json, item);
                json.WriteEndArray();
                return inList;
            case (string Name, object? Value)[] fields:
                json.WriteStartObject();
                long inStruct = 1;
                foreach (var (name, field) in fields)
                {
                    json.WritePropertyName(name);
                    inStruct += Write(json, field);
                }
                json.WriteEndObject();
                return inStruct;
            case string s: json.WriteStringValue(s); break;
            case bool b: json.WriteBooleanValue(b); break;
            case int i: json.WriteNumberValue(i); break;
            case long l: json.WriteNumberValue(l); break;
            case float f when float.IsFinite(f): json.WriteNumberValue(f); break;
            case double d when double.IsFinite(d): json.WriteNumberValue(d); break;
            default: json.WriteNullValue(); break;
        }
        return 1;
    }
}
