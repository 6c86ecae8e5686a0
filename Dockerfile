FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY knowledge ./knowledge
COPY prompts ./prompts
RUN pip install --no-cache-dir -e .
EXPOSE 8000
CMD ["sh", "-c", "draftdesk db upgrade && draftdesk serve"]
