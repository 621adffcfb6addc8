"""synthtasks.v1.TaskService: review, import and export of staged texts, and tasks."""

from __future__ import annotations

from datetime import UTC, datetime

from synthtasks.v1 import task_service_pb2 as task_pb2
from synthtasks.v1 import task_service_pb2_grpc as task_grpc

from services.runtime.errors import InvalidArgument
from services.task_store import validation
from services.task_store.export import export_chunks, export_task_chunks
from services.task_store.page_positions import next_token, page_position, query_key
from services.task_store.proto_conversions import (
    parse_batch_targets,
    parse_export_format,
    parse_export_options,
    parse_text_filter,
    populated_fields,
    ref_key,
    span_records,
    staged_text_proto,
    task_proto,
)
from services.task_store.records import TextChange, TextState
from services.task_store.repository.staged_texts import StagedTextRepository
from services.task_store.repository.tasks import TaskRepository
from services.vocabulary import etags, names, page_tokens


class TaskServicer(task_grpc.TaskServiceServicer):
    """synthtasks.v1.TaskService: review, import and export of staged texts."""

    def __init__(self, texts: StagedTextRepository, tasks: TaskRepository) -> None:
        self._texts = texts
        self._tasks = tasks

    def ListStagedTexts(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        text_filter = parse_text_filter(request.filter, project, field="filter")
        limit = page_tokens.page_size(request.page_size)
        query = query_key(request.parent, request.filter.SerializeToString(deterministic=True))
        page = self._texts.list_texts(project, text_filter, page_position(request.page_token, query), limit)
        return task_pb2.ListStagedTextsResponse(
            staged_texts=[staged_text_proto(text) for text in page.items], next_page_token=next_token(page, query)
        )

    def GetStagedText(self, request, context):
        ref = names.parse_staged_text(request.name, field="name")
        return task_pb2.GetStagedTextResponse(staged_text=staged_text_proto(self._texts.get_text(*ref_key(ref))))

    def UpdateStagedText(self, request, context):
        given = request.staged_text
        ref = names.parse_staged_text(given.name, field="staged_text.name")
        paths = validation.update_mask(
            request.update_mask.paths,
            allowed=("text", "tags", "spans"),
            populated=populated_fields(given, ("text", "tags", "spans")),
        )
        if not paths:
            return task_pb2.UpdateStagedTextResponse(staged_text=staged_text_proto(self._texts.get_text(*ref_key(ref))))
        change = TextChange(
            text=validation.edited_text(given.text, field="staged_text.text") if "text" in paths else None,
            tags=validation.tags(given.tags, field="staged_text.tags") if "tags" in paths else None,
            # Checked against the text and the job's labels where both are at hand: in the repository.
            spans=tuple(span_records(given.spans)) if "spans" in paths else None,
        )
        updated = self._texts.update_text(
            ref.project, ref.id, change, etags.expected_version(given.etag, field="staged_text.etag")
        )
        return task_pb2.UpdateStagedTextResponse(staged_text=staged_text_proto(updated))

    def DiscardStagedTexts(self, request, context):
        project, targets = parse_batch_targets(request.parent, request.names)
        texts = self._texts.set_texts_state(project, targets, TextState.DISCARDED)
        return task_pb2.DiscardStagedTextsResponse(staged_texts=[staged_text_proto(text) for text in texts])

    def RestoreStagedTexts(self, request, context):
        project, targets = parse_batch_targets(request.parent, request.names)
        texts = self._texts.set_texts_state(project, targets, TextState.STAGED)
        return task_pb2.RestoreStagedTextsResponse(staged_texts=[staged_text_proto(text) for text in texts])

    def ImportStagedTexts(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        has_filter = request.HasField("filter")
        if request.names and has_filter:
            raise InvalidArgument.field("filter", "give either names or a filter, not both")
        if request.names:
            _, targets = parse_batch_targets(request.parent, request.names)
            result = self._texts.import_texts(project, targets=targets)
        elif has_filter:
            text_filter = parse_text_filter(request.filter, project, field="filter")
            if text_filter.state not in (None, TextState.STAGED):
                raise InvalidArgument.field("filter.state", "import takes staged texts: leave it unset or STAGED")
            result = self._texts.import_texts(project, text_filter=text_filter)
        else:
            raise InvalidArgument.field(
                "names", "give the texts' names, or a filter (an empty filter imports every staged text of the project)"
            )
        return task_pb2.ImportStagedTextsResponse(
            created_count=result.created_count, already_imported_count=result.already_imported_count
        )

    def ListTasks(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        tag = validation.tag(request.tag, field="tag") if request.tag else None
        job_id = (
            names.parse_job(request.generation_job, field="generation_job", project=project).id
            if request.generation_job
            else None
        )
        limit = page_tokens.page_size(request.page_size)
        query = query_key(request.parent, tag or "", job_id or "")
        page = self._tasks.list_tasks(
            project, tag=tag, job_id=job_id, before_seq=page_position(request.page_token, query), limit=limit
        )
        return task_pb2.ListTasksResponse(
            tasks=[task_proto(task) for task in page.items], next_page_token=next_token(page, query)
        )

    def GetTask(self, request, context):
        ref = names.parse_task(request.name, field="name")
        return task_pb2.GetTaskResponse(task=task_proto(self._tasks.get_task(*ref_key(ref))))

    def UpdateTask(self, request, context):
        given = request.task
        ref = names.parse_task(given.name, field="task.name")
        paths = validation.update_mask(
            request.update_mask.paths, allowed=("tags",), populated=populated_fields(given, ("tags",))
        )
        if not paths:
            return task_pb2.UpdateTaskResponse(task=task_proto(self._tasks.get_task(*ref_key(ref))))
        tags = validation.tags(given.tags, field="task.tags")
        updated = self._tasks.update_task_tags(
            ref.project, ref.id, tags, etags.expected_version(given.etag, field="task.etag")
        )
        return task_pb2.UpdateTaskResponse(task=task_proto(updated))

    def ExportStagedTexts(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        text_filter = parse_text_filter(request.filter, project, field="filter")
        export_format = parse_export_format(request.format)
        options = parse_export_options(request.options, field="options")
        texts = self._texts.iter_texts(project, text_filter)
        try:
            for chunk in export_chunks(texts, export_format, project=project, now=datetime.now(UTC), options=options):
                yield task_pb2.ExportStagedTextsResponse(
                    data=chunk.data, content_type=chunk.content_type, file_name=chunk.file_name
                )
        finally:
            texts.close()  # drops the page in hand at once when the client goes away

    def ExportTasks(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        tag = validation.tag(request.tag, field="tag") if request.tag else None
        job_id = (
            names.parse_job(request.generation_job, field="generation_job", project=project).id
            if request.generation_job
            else None
        )
        export_format = parse_export_format(request.format)
        options = parse_export_options(request.options, field="options")
        tasks = self._tasks.iter_tasks(project, tag=tag, job_id=job_id)
        try:
            for chunk in export_task_chunks(
                tasks, export_format, project=project, now=datetime.now(UTC), options=options
            ):
                yield task_pb2.ExportTasksResponse(
                    data=chunk.data, content_type=chunk.content_type, file_name=chunk.file_name
                )
        finally:
            tasks.close()  # as for staged texts: no page held once the client goes away
